import { PassThrough, Writable } from 'node:stream';
import { untilDrained } from '../streams';

/**
 * Writes what it is given to several branches at the pace of the slowest: it takes the next chunk only once every
 * branch has room (backpressure), so nothing piles up in memory. A branch that fails or is destroyed is dropped and
 * the others go on, which is how an upload carries on to disk when S3 drops out midway. When the source fails, the
 * Tee is destroyed with its error and passes it to every branch, so each store sees the client's failure.
 */
export class Tee extends Writable {
  readonly branches: readonly PassThrough[];
  private readonly live = new Set<PassThrough>();

  constructor(count: number) {
    super();
    this.branches = Array.from({ length: count }, () => new PassThrough());
    for (const branch of this.branches) {
      this.live.add(branch);
      branch.once('close', () => this.live.delete(branch));
      // A branch's error is its store's to report; here it only means the branch is out.
      branch.on('error', () => this.live.delete(branch));
    }
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    const waits: Promise<void>[] = [];
    for (const branch of this.live) {
      if (branch.destroyed) continue;
      if (!branch.write(chunk)) waits.push(untilDrained(branch));
    }
    // Every branch gone (every store failed): fail now rather than read the rest of the body for nothing.
    if (this.live.size === 0) return done(new EveryBranchFailed());
    if (waits.length === 0) return done();
    Promise.all(waits).then(() => done());
  }

  override _final(done: (err?: Error | null) => void): void {
    for (const branch of this.live) branch.end();
    done();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    // A Tee destroys itself after it finished (autoDestroy); its branches, ended, are still being read then.
    if (err || !this.writableFinished) {
      const reason = err ?? new Error('The upload stopped before its end');
      for (const branch of this.live) branch.destroy(reason);
    }
    done(err);
  }
}

/** The Tee's own failure: every branch is gone. The stores report why, each through its own branch. */
export class EveryBranchFailed extends Error {
  constructor() {
    super('Every branch of the upload failed');
  }
}

