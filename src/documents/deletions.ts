import type { Db, Queryable } from '../db';
import type { Logger } from '../logger';
import { InvalidKeyError, type Storage } from '../storage';
import type { FileToRemove } from './document';
import { MOVE_LOCK } from './locks';
import { isLocalDocument, isStoredFileReferenced } from './repository';

interface QueuedDeletion {
  id: string;
  storage: FileToRemove['storage'];
  storage_key: string;
  stored_file_name: string | null;
  document_id: string | null;
  attempts: number;
}

/**
 * Records stored files for removal, inside the transaction that deletes their rows: once that commits, the files are
 * queued for good, whatever happens to this process next. Returns the queue ids, to remove them right after commit.
 */
export async function enqueueFileDeletions(q: Queryable, files: readonly FileToRemove[]): Promise<string[]> {
  if (files.length === 0) return [];
  const rows = await q.query<{ id: string }>(
    `INSERT INTO document_file_deletions (storage, storage_key, stored_file_name, document_id)
     SELECT * FROM unnest($1::varchar[], $2::text[], $3::text[], $4::bigint[]) RETURNING id`,
    [files.map((f) => f.storage), files.map((f) => f.key), files.map((f) => f.storedFileName), files.map((f) => f.documentId)],
  );
  return rows.map((r) => String(r.id));
}

export interface FileDeletionsOptions {
  /** The first retry's delay; each further failure doubles it, up to an hour. */
  retryBaseMs?: number;
  /** Queue entries taken per run of the background job. */
  batchSize?: number;
}

const MAX_RETRY_DELAY_MS = 60 * 60 * 1000;
const CONCURRENCY = 8;

export interface RunOptions {
  /** The caller holds MOVE_LOCK (a move cleaning up after itself): no other move can run meanwhile. */
  moveLockHeld?: boolean;
}

type Outcome = 'removed' | 'failed' | 'deferred';

/** Works through the deletion queue: right after a delete commits, and from the background job for retries. */
export class FileDeletions {
  private readonly retryBaseMs: number;
  private readonly batchSize: number;

  constructor(
    private readonly deps: { db: Db; storage: Storage; logger: Logger },
    options: FileDeletionsOptions = {},
  ) {
    this.retryBaseMs = options.retryBaseMs ?? 30_000;
    this.batchSize = options.batchSize ?? 500;
  }

  /** Removes the files of these queue entries now. A failure leaves the entry queued for a later retry. */
  async run(ids: readonly string[], options: RunOptions = {}): Promise<{ removed: number; failed: number }> {
    if (ids.length === 0) return { removed: 0, failed: 0 };
    const entries = await this.deps.db.query<QueuedDeletion>(
      'SELECT * FROM document_file_deletions WHERE id = ANY($1::bigint[])',
      [ids],
    );
    return this.process(entries, options);
  }

  /** Removes the files whose retry is due, one batch. */
  async runDue(): Promise<{ removed: number; failed: number }> {
    const entries = await this.deps.db.query<QueuedDeletion>(
      'SELECT * FROM document_file_deletions WHERE next_attempt_at <= now() ORDER BY next_attempt_at LIMIT $1',
      [this.batchSize],
    );
    return this.process(entries, {});
  }

  /** How many files wait to be removed. */
  async pending(): Promise<number> {
    const [row] = await this.deps.db.query<{ n: string }>('SELECT count(*) AS n FROM document_file_deletions');
    return Number(row.n);
  }

  /** Deferred entries (a move holds MOVE_LOCK) count as neither: they are tried again a little later. */
  private async process(entries: QueuedDeletion[], options: RunOptions): Promise<{ removed: number; failed: number }> {
    let removed = 0;
    let failed = 0;
    const queue = [...entries];
    const worker = async () => {
      for (let entry = queue.shift(); entry; entry = queue.shift()) {
        const outcome = await this.remove(entry, options);
        if (outcome === 'removed') removed++;
        if (outcome === 'failed') failed++;
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, entries.length) }, worker));
    return { removed, failed };
  }

  private async remove(entry: QueuedDeletion, { moveLockHeld = false }: RunOptions): Promise<Outcome> {
    const { db, logger } = this.deps;
    try {
      // A move's leftover copy on S3, its row still local: a move of that row may be writing this very key again,
      // and would switch onto it right after the check below. Checked and removed only while no move runs, and
      // with the row locked (removeLeftover).
      const leftover = entry.storage === 's3' && entry.document_id !== null && (await isLocalDocument(db, entry.document_id));
      if (leftover && moveLockHeld) {
        await this.removeLeftover(entry);
      } else if (leftover) {
        if ((await db.tryWithLock(MOVE_LOCK, () => this.removeLeftover(entry))) === undefined) {
          await db.query("UPDATE document_file_deletions SET next_attempt_at = now() + $2 * interval '1 millisecond' WHERE id = $1", [
            entry.id,
            this.retryBaseMs,
          ]);
          return 'deferred';
        }
      } else {
        await this.removeUnlessReferenced(entry);
      }
      await db.query('DELETE FROM document_file_deletions WHERE id = $1', [entry.id]);
      return 'removed';
    } catch (err) {
      const delayMs = Math.min(MAX_RETRY_DELAY_MS, this.retryBaseMs * 2 ** entry.attempts);
      logger.warn(
        { err, storage: entry.storage, key: entry.storage_key, attempts: entry.attempts + 1, retryInMs: delayMs },
        'could not remove a queued file (a deleted document\'s, or an upload\'s that has no row); it stays queued',
      );
      await db
        .query(
          `UPDATE document_file_deletions
              SET attempts = attempts + 1, last_error = $2, next_attempt_at = now() + $3 * interval '1 millisecond'
            WHERE id = $1`,
          [entry.id, String((err as Error)?.message ?? err).slice(0, 1000), delayMs],
        )
        .catch(() => undefined); // the database may be what failed; the entry stays due and is tried again
      return 'failed';
    }
  }

  /**
   * A move's leftover copy, checked and removed with its document's row locked (FOR SHARE), for as long as the
   * removal takes. MOVE_LOCK keeps moves away, but a mover can lose it with its connection before it knows, and go
   * on to switch its row onto this key: that switch waits for this lock and then finds the copy gone (mover.ts), or
   * this waits for the switch and then finds the row naming the key. Resolves to true, so that under tryWithLock a
   * result of undefined can only mean the lock was taken.
   */
  private removeLeftover(entry: QueuedDeletion): Promise<true> {
    // One S3 request inside the transaction: it holds one row, which only a move of that document wants.
    return this.deps.db.transaction(async (tx) => {
      await tx.query('SELECT 1 FROM customer_documents WHERE id = $1 FOR SHARE', [entry.document_id]);
      await this.removeUnlessReferenced(entry, tx);
      return true as const;
    });
  }

  private async removeUnlessReferenced(entry: QueuedDeletion, q: Queryable = this.deps.db): Promise<void> {
    // Rows of the old CRM can share one file, and a file being moved is named by its row again once switched;
    // a file that a row still names stays. Erring towards "referenced" can only keep a file, never lose one.
    const referenced = entry.stored_file_name
      ? await isStoredFileReferenced(q, { storage: entry.storage, key: entry.storage_key, storedFileName: entry.stored_file_name }, entry.document_id)
      : false;
    if (!referenced) await this.removeFile(entry);
  }

  private async removeFile(entry: QueuedDeletion): Promise<void> {
    try {
      await this.deps.storage.driver(entry.storage).delete(entry.storage_key);
    } catch (err) {
      if (!(err instanceof InvalidKeyError)) throw err;
      // An old CRM row naming a file no key can reach (a dot-name, a control character): the service never wrote
      // or served it, and no retry could remove it. Left to ops, named in the log, rather than retried forever.
      this.deps.logger.warn(
        { storage: entry.storage, key: entry.storage_key },
        'the file of a deleted document has a name the service cannot use; remove it by hand if it exists',
      );
    }
  }
}
