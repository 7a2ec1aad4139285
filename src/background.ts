import type { Logger } from './logger';
import type { FileDeletions } from './documents/deletions';
import type { DocumentsService } from './documents/service';
import type { S3Sync } from './documents/sync';
import type { LocalDriver } from './storage';

/**
 * A temporary upload file untouched this long belongs to an upload that died with its process: a live upload
 * writes continuously, and a client that goes quiet is cut off long before (IDLE_TIMEOUT_MS).
 */
export const STALE_TEMP_MS = 10 * 60 * 1000;

export interface BackgroundDeps {
  local: LocalDriver;
  documents: DocumentsService;
  deletions: FileDeletions;
  sync: S3Sync;
  logger: Logger;
}

/**
 * The upkeep each instance runs at startup and then every SYNC_INTERVAL: removes temporary files of uploads cut
 * off by a crash, settles uploads whose row may not have been written, retries queued file deletions that are
 * due, and moves documents kept on local disk during an S3
 * outage to S3. A failing step (the database or S3 down) is logged and tried again next time; runs never overlap.
 */
export class BackgroundJobs {
  private timer?: NodeJS.Timeout;
  private current?: Promise<void>;
  private readonly stopping = new AbortController();

  constructor(
    private readonly deps: BackgroundDeps,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    this.schedule(0);
  }

  /** One run of every step, now. */
  async runOnce(): Promise<void> {
    const { local, documents, deletions, sync, logger } = this.deps;
    await step(logger, 'removing stale temporary files', async () => {
      const removed = await local.sweepTemporaryFiles(STALE_TEMP_MS);
      if (removed > 0) logger.info({ removed }, 'removed temporary files of uploads cut off by a restart');
    });
    await step(logger, 'settling uploads recorded during a database outage', () => documents.settleUnconfirmed());
    await step(logger, 'retrying file deletions', () => deletions.runDue());
    await step(logger, 'moving documents to S3', () => sync.run(this.stopping.signal));
  }

  /** Stops scheduling and waits for a run in progress; a sync in progress stops after its current document. */
  async stop(): Promise<void> {
    this.stopping.abort();
    clearTimeout(this.timer);
    await this.current;
  }

  private schedule(delayMs: number): void {
    if (this.stopping.signal.aborted) return;
    this.timer = setTimeout(() => {
      this.current = this.runOnce().finally(() => {
        this.current = undefined;
        this.schedule(this.intervalMs);
      });
    }, delayMs);
    // The process exits on its own terms (shutdown), never kept alive by upkeep.
    this.timer.unref();
  }
}

async function step(logger: Logger, what: string, fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    logger.warn({ err }, `background job: ${what} failed; trying again next run`);
  }
}
