/**
 * Admits work up to a capacity (bytes of S3 upload parts, sockets to S3, connections to the database) and queues
 * the rest, first come first served, for at most `waitMs`. Under a burst, the service slows down and then refuses
 * what it cannot take (503 with Retry-After) instead of running out of memory, or reporting a store that is
 * merely busy as down.
 *
 * Written here rather than taken from async-mutex, whose weighted Semaphore does the rest: a waiter whose client
 * has gone must leave the queue at once (`signal`), not hold its place until its turn comes round.
 */
export class Gate implements GateLoad {
  private used = 0;
  private readonly queue: Waiter[] = [];
  private timeouts = 0;

  /** `refuse`: what a waiter that gave up after `waitMs` rejects with, e.g. the 503 its caller answers. */
  constructor(
    readonly capacity: number,
    private readonly waitMs: number,
    private readonly refuse: (timeout: GateTimeoutError) => Error = (timeout) => timeout,
  ) {}

  /** Weight admitted and not yet released. */
  get inUse(): number {
    return this.used;
  }

  get waiting(): number {
    return this.queue.length;
  }

  /** Waiters turned away after `waitMs`, since the gate was made. */
  get refused(): number {
    return this.timeouts;
  }

  /**
   * Resolves with `release` (which may be called more than once) once `weight` fits. A weight over the capacity is
   * taken as the whole capacity: it waits until nothing else is admitted. Strictly in order of arrival, so that a
   * large weight is not passed over for good by a stream of small ones. Rejects after `waitMs` with what `refuse`
   * makes of a GateTimeoutError, or with the signal's reason when it aborts first.
   */
  enter(weight = 1, signal?: AbortSignal): Promise<() => void> {
    const need = Math.min(Math.max(weight, 0), this.capacity);
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.queue.length === 0 && this.used + need <= this.capacity) return Promise.resolve(this.admit(need));
    return new Promise((resolve, reject) => {
      const leave = (err: unknown): boolean => {
        const at = this.queue.indexOf(waiter);
        if (at === -1) return false;
        this.queue.splice(at, 1);
        waiter.done();
        reject(err);
        // The one that left may have held back smaller ones behind it.
        this.dispatch();
        return true;
      };
      const onAbort = () => leave(signal!.reason);
      const timeOut = () => {
        if (leave(this.refuse(new GateTimeoutError(this.waitMs)))) this.timeouts++;
      };
      // Unref'd: a waiter is a request whose socket keeps the process up; the timer alone should not.
      const timer = setTimeout(timeOut, this.waitMs).unref();
      const waiter: Waiter = {
        need,
        admit: () => resolve(this.admit(need)),
        done: () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(waiter);
    });
  }

  /** Runs `fn` once one unit is admitted, and releases it when `fn` settles. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const leave = await this.enter();
    try {
      return await fn();
    } finally {
      leave();
    }
  }

  private admit(need: number): () => void {
    this.used += need;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used -= need;
      this.dispatch();
    };
  }

  private dispatch(): void {
    while (this.queue.length > 0 && this.used + this.queue[0].need <= this.capacity) {
      const waiter = this.queue.shift()!;
      waiter.done();
      waiter.admit();
    }
  }
}

/** What a gate holds, as ops see it (see Metrics.watchGates). */
export interface GateLoad {
  /** The room: bytes, connections or sockets, as the gate counts. */
  readonly capacity: number;
  readonly inUse: number;
  readonly waiting: number;
  readonly refused: number;
}

interface Waiter {
  readonly need: number;
  admit(): void;
  /** Stops the waiter's timer and abort listener. */
  done(): void;
}

export class GateTimeoutError extends Error {
  constructor(readonly waitedMs: number) {
    super(`waited ${waitedMs} ms for room`);
  }
}
