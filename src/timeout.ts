/**
 * What `promise` resolves to if it does within `ms`; `fallback` when it rejects or takes longer. The one place a
 * wait is bounded: health probes, shutdown steps, waiting for work under way. `ms` Infinity waits for good.
 */
export async function within<T>(promise: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<T>((resolve) => {
    if (Number.isFinite(ms)) timer = setTimeout(() => resolve(fallback), Math.max(0, ms));
  });
  try {
    return await Promise.race([promise.catch(() => fallback), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
