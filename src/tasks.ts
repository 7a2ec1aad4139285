import { within } from './timeout';

/**
 * Work that must not be cut off by a shutdown: uploads being stored and recorded, and the removal of a deleted
 * document's files after commit, which the request does not wait for. Shutdown waits for it; what a crash cuts off
 * is a temporary file (swept at startup), an orphan file that no row names (never served; for a consistency check to remove) or a queued deletion (retried).
 */
export class Tasks {
  private readonly running = new Set<Promise<unknown>>();

  run(task: () => Promise<unknown>): void {
    this.track(task());
  }

  /** Counts `promise` as running until it settles; returns it unchanged. */
  track<T>(promise: Promise<T>): Promise<T> {
    const settled = promise.then(
      () => undefined,
      () => undefined,
    );
    this.running.add(settled);
    settled.finally(() => this.running.delete(settled));
    return promise;
  }

  /** Resolves once every task has settled, or after timeoutMs; answers whether all had. */
  async idle(timeoutMs = Infinity): Promise<boolean> {
    const until = Date.now() + timeoutMs;
    // Again while tasks settle: one may have started another meanwhile.
    while (this.running.size > 0) {
      if (!(await within(Promise.all(this.running).then(() => true), until - Date.now(), false))) return false;
    }
    return true;
  }
}
