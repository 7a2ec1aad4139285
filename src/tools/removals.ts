import { setTimeout as sleep } from 'node:timers/promises';
import { type Config, FORM_TAIL_MS, type StorageName } from '../config';
import { awaitDocumentWriters } from '../documents/repository';
import type { Storage } from '../storage';
import type { Db } from '../db';
import type { Listed } from './listings';
import { claimOf, namesIn, rowsNaming } from './orphans';

/** What became of an unclaimed file that was held for removal. */
export type Outcome = 'removed' | 'claimed' | 'unconfirmed' | 'refused';

/**
 * How long after a file is first seen unclaimed --fix waits before it looks again and removes it: longer than the
 * service can take between storing an upload and its INSERT reaching Postgres. The file's own age does not cover
 * that: AWS dates a multipart object from the upload's start, so an upload that took longer than the minimum age
 * lists as old in the moment between CompleteMultipartUpload and its row. That moment lasts while the reply to the
 * completion is retried (S3_TIMEOUT per attempt), the rest of the form arrives (FORM_TAIL_MS at most), the
 * customer's lookup and the INSERT wait for a connection (QUEUE_TIMEOUT each) and it connects (5 s); a minute more
 * is margin. Read from the tool's environment: run it with the service's (README).
 */
export function removalGraceMs(config: Config): number {
  const s3 = config.storage.s3;
  const s3Reply = s3 ? s3.timeoutMs * s3.maxAttempts : 0;
  return 60_000 + s3Reply + FORM_TAIL_MS + 2 * config.reliability.queueTimeoutMs + 5_000;
}

/** Held files are looked at again in batches of this many: the queue's memory stays bounded on any store. */
const BATCH = 1_000;

/**
 * Files held at once. Without --force, a store's removals wait for the end of its listing, to see what share of its
 * files no row claims, and more than this many means a wrong database or a store to look at first: refused. With
 * --force they are settled each time this many are held, so the grace is waited out once per this many.
 */
export const HOLD_MAX = 100_000;

/** More than this share of a store's files unclaimed, and --fix removes none of them without --force. */
export const MAX_UNCLAIMED_SHARE = 0.1;

interface Held {
  storage: StorageName;
  file: Listed;
  seenAt: number;
}

export interface RemovalReports {
  /** A held file's outcome. */
  file(storage: StorageName, file: Listed, outcome: Outcome): void;
  /** The grace is being waited out for this many files. */
  waiting(files: number, ms: number): void;
  /**
   * A store's removals refused: `unclaimed` of its `listed` files are no row's, more than a tenth of them, or more
   * than `holdMax` (`overflowed`).
   */
  refused(storage: StorageName, unclaimed: number, listed: number, overflowed: boolean): void;
}

/**
 * Unclaimed files --fix is to remove, held until the grace after they were first seen has passed, then looked at
 * once more with every write to the table under way finished (an INSERT waiting on a lock in Postgres, say): a
 * row that names one by then keeps it. A large listing takes longer than the grace, so only a short one waits.
 *
 * And held, without --force, until the store's listing ends: a store where more than a tenth of the service's files
 * are no row's is far more likely read against the wrong database (a staging DATABASE_URL, the Quick start's
 * embedded one, an empty database the service has upgraded) or the wrong prefix than left so by crashes, and removing
 * them would remove the real database's documents. None is removed then, and the tool says why.
 */
export class DeferredRemovals {
  private held: Held[] = [];
  private overflowed = 0;
  /** Set once writes to the table kept a look from being made: the run removes nothing more (namedNow). */
  private unconfirmed = false;

  constructor(
    private readonly deps: { db: Db; storage: Storage; s3Prefix: string | undefined },
    private readonly options: { graceMs: number; force: boolean; holdMax?: number },
    private readonly reports: RemovalReports,
  ) {}

  async add(storage: StorageName, file: Listed): Promise<void> {
    const holdMax = this.options.holdMax ?? HOLD_MAX;
    if (!this.options.force && this.held.length >= holdMax) {
      this.overflowed++;
      this.reports.file(storage, file, 'refused');
      return;
    }
    this.held.push({ storage, file, seenAt: Date.now() });
    if (this.options.force && this.held.length >= holdMax) await this.settle();
  }

  /** The end of a store's listing, of `listed` files the service's (claimed or not): settles what it holds. */
  async finish(storage: StorageName, listed: number): Promise<void> {
    const unclaimed = this.held.length + this.overflowed;
    if (!this.options.force && (this.overflowed > 0 || unclaimed > listed * MAX_UNCLAIMED_SHARE)) {
      this.reports.refused(storage, unclaimed, listed, this.overflowed > 0);
      for (const { file } of this.held.splice(0)) this.reports.file(storage, file, 'refused');
    } else {
      await this.settle();
    }
    this.overflowed = 0;
  }

  /** Looks at every held file again, once its grace has passed, and removes those still no row's. */
  private async settle(): Promise<void> {
    const batch = this.held.splice(0);
    for (let at = 0; at < batch.length; at += BATCH) await this.settleBatch(batch.slice(at, at + BATCH));
  }

  private async settleBatch(batch: Held[]): Promise<void> {
    if (batch.length === 0) return;
    const wait = batch[batch.length - 1].seenAt + this.options.graceMs - Date.now();
    if (wait > 0 && !this.unconfirmed) {
      this.reports.waiting(batch.length, wait);
      await sleep(wait);
    }
    const byName = this.unconfirmed ? undefined : await this.namedNow(batch);
    for (const { storage, file } of batch) {
      if (!byName) {
        this.reports.file(storage, file, 'unconfirmed');
      } else if (claimOf(storage, file, byName, this.deps.s3Prefix) !== undefined) {
        this.reports.file(storage, file, 'claimed');
      } else {
        await this.deps.storage.driver(storage).delete(file.key);
        this.reports.file(storage, file, 'removed');
      }
    }
  }

  /**
   * The rows naming the batch's files, read once every write under way has ended; undefined when writes kept going
   * (awaitDocumentWriters gives up after 500 ms, three times a second apart): nothing is removed on a guess, then
   * or later in the run. Each wait holds the table's later writes behind it (the CRM's too), so a table that is
   * never quiet (a long transaction that wrote to it, a vacuum) is not waited on batch after batch.
   */
  private async namedNow(batch: Held[]): Promise<Awaited<ReturnType<typeof rowsNaming>> | undefined> {
    const names = batch.flatMap(({ file }) => namesIn(file.key));
    for (let attempt = 0; attempt < 3; attempt++) {
      if (attempt > 0) await sleep(1_000);
      try {
        return await this.deps.db.transaction(async (tx) => {
          await awaitDocumentWriters(tx);
          return rowsNaming(tx, names);
        });
      } catch (err) {
        if ((err as { code?: string }).code !== '55P03') throw err;
      }
    }
    this.unconfirmed = true;
    return undefined;
  }
}
