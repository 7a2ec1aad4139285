/** Waits until `check` holds, polling, for up to `ms`; fails the test with `what` when it never does. */
export async function eventually(check: () => Promise<boolean> | boolean, ms = 5_000, what = 'condition'): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`${what} not reached within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
