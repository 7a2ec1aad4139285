import type { Config } from '../config';
import { DatabaseBusyError } from '../errors';
import type { Db } from '../db';
import type { Logger } from '../logger';
import type { Storage } from '../storage';
import type { FileDeletions } from './deletions';
import { MOVE_LOCK } from './locks';
import { moveToS3, S3NotAnswering } from './mover';
import * as repo from './repository';

const PAGE = 100;

/**
 * Moves documents that were kept on local disk during an S3 outage to S3 (see moveToS3: copy, check, switch, and
 * only then remove the local copy; every step safe to repeat, so a run cut short by a restart is finished by the next).
 */
export class S3Sync {
  constructor(private readonly deps: { db: Db; storage: Storage; config: Config; logger: Logger; deletions: FileDeletions }) {}

  /**
   * Moves every waiting document. Stops early, leaving the rest waiting, when S3 does not answer or `signal`
   * aborts (shutdown): between documents, never halfway through one.
   */
  async run(signal?: AbortSignal): Promise<{ moved: number; failed: number }> {
    if (!this.deps.storage.s3) return { moved: 0, failed: 0 };
    // One instance at a time: another instance's run in progress does this work already.
    const result = await this.deps.db.tryWithLock(MOVE_LOCK, (_session, lost) => this.moveAll(signal, lost));
    return result ?? { moved: 0, failed: 0 };
  }

  /**
   * `lost`: the lock went with its database connection. Another mover may hold it now, and a leftover S3 copy may be
   * removed on the strength of it (FileDeletions), so the pass stops there too; the next takes the lock again.
   */
  private async moveAll(signal: AbortSignal | undefined, lost: AbortSignal): Promise<{ moved: number; failed: number }> {
    const { db, logger } = this.deps;
    let moved = 0;
    let failed = 0;
    for (let after = 0; ; ) {
      const rows = await repo.listPendingMoves(db, 's3', after, PAGE);
      if (rows.length === 0) break;
      for (const row of rows) {
        if (signal?.aborted) return { moved, failed };
        if (lost.aborted) {
          logger.warn({ moved }, 'the lock that keeps movers apart was lost with its database connection; the next pass goes on');
          return { moved, failed };
        }
        try {
          const outcome = await moveToS3(this.deps, row);
          if (outcome.result === 'moved') moved++;
          if (outcome.result === 'missing') {
            failed++;
            logger.error({ documentId: row.id }, 'a document waiting to move to S3 has no local file');
          }
        } catch (err) {
          if (err instanceof S3NotAnswering) {
            logger.warn({ err: err.cause, documentId: row.id }, `${err.message}; documents wait on local disk for the next pass`);
            return { moved, failed: failed + 1 };
          }
          // Every database connection taken by requests: so would the next document's be.
          if (err instanceof DatabaseBusyError) {
            logger.warn({ documentId: row.id }, 'the database is busy with requests; documents wait on local disk for the next pass');
            return { moved, failed: failed + 1 };
          }
          failed++;
          logger.error({ err, documentId: row.id }, 'could not move a document to S3; it stays on local disk');
        }
      }
      after = rows[rows.length - 1].id;
    }
    if (moved > 0) logger.info({ moved }, 'documents kept on local disk during an S3 outage moved to S3');
    return { moved, failed };
  }
}
