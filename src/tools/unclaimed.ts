import type { StorageName } from '../config';
import { isStoredFileName } from '../documents/file-name';
import { isValidKey } from '../storage';
import { describeDatabase, type ToolContext } from './context';
import { listBucket, type Listed, walkLocal } from './listings';
import { claimOf, namesIn, rowsNaming } from './orphans';
import { DeferredRemovals, HOLD_MAX, type Outcome, removalGraceMs } from './removals';
import type { Output } from './run';
import type { VerifyOptions, VerifyReport } from './storage-verify';

/** An unclaimed file younger than this may be an upload whose row is about to be written: never removed. */
const ORPHAN_MIN_AGE_MS = 60 * 60 * 1000;

/** Lists UPLOAD_DIR and the bucket's prefix for files no row claims; with --fix, removes those it may (removals.ts). */
export async function findUnclaimed(ctx: ToolContext, options: VerifyOptions, out: Output, report: VerifyReport): Promise<void> {
  // The embedded database's files, should PGLITE_DATA_DIR lie inside UPLOAD_DIR (one volume for both), are no
  // document's: never listed, let alone removed.
  const pglite = ctx.config.database.pgliteDataDir;
  const removals = new DeferredRemovals(
    { db: ctx.db, storage: ctx.storage, s3Prefix: ctx.config.storage.s3?.prefix },
    { graceMs: options.removalGraceMs ?? removalGraceMs(ctx.config), force: options.force ?? false, holdMax: options.holdMax },
    {
      file: (storage, file, outcome) => reportRemoval(out, report, storage, file.key, outcome),
      waiting: (files, ms) => out.line(`waiting ${Math.ceil(ms / 1000)} s before removing ${files} unclaimed files: an upload may be about to record one`),
      refused: (storage, unclaimed, listed, overflowed) =>
        out.line(
          `REFUSED to remove from ${storage}: ${unclaimed} of its ${listed} files are no row's, ` +
            `${overflowed ? `more than the ${(options.holdMax ?? HOLD_MAX).toLocaleString('en-US')} --fix holds in one run` : 'more than a tenth'}. Is this the service's ` +
            `database (${describeDatabase(ctx.config)})? Documents uploaded after a restored backup was taken are no row's too. ` +
            'If these are orphans indeed, run again with --fix --force.',
        ),
    },
  );
  await findOrphans(ctx, options, out, report, removals, 'local', walkLocal(ctx.config.storage.uploadDir, new Set([pglite, `${pglite}.lock`])));
  if (ctx.storage.s3 && ctx.config.storage.s3) {
    const { bucket, prefix } = ctx.config.storage.s3;
    await findOrphans(ctx, options, out, report, removals, 's3', listBucket(ctx.storage.s3.client, bucket, prefix));
  }
}

/**
 * Streams a store's listing in batches and asks the database which of each batch a row claims (by the stored names
 * a key can hold, which are indexed, then by exact key: orphans.ts): a million files never sit in memory at once.
 */
async function findOrphans(
  ctx: ToolContext,
  options: VerifyOptions,
  out: Output,
  report: VerifyReport,
  removals: DeferredRemovals,
  storage: StorageName,
  listing: AsyncGenerator<Listed>,
): Promise<void> {
  const s3Prefix = ctx.config.storage.s3?.prefix;
  let batch: Listed[] = [];
  /** The service's files in this store, claimed or not (not another program's, kept below). */
  let listed = 0;
  const flush = async () => {
    const rows = await rowsNaming(ctx.db, batch.flatMap((f) => namesIn(f.key)));
    for (const file of batch) {
      const claim = claimOf(storage, file, rows, s3Prefix);
      if (claim === 'claimed') {
        listed++;
        continue;
      }
      if (claim === 'named') {
        listed++;
        // Never removed; a row that misses it is reported above.
        out.line(`KEPT ${storage}:${file.key}: no row's file, but a row names a file of this name`);
        continue;
      }
      if (storage === 'local' && file.key.includes('/')) {
        // A document's local file lies at the top of UPLOAD_DIR, named by its stored name; a file in a folder there
        // is someone else's (another program's data on a shared volume): named, never removed, not an orphan.
        out.line(`KEPT local:${file.key}: in a folder, where no document is stored`);
        continue;
      }
      if (storage === 'local' && !isStoredFileName(file.key)) {
        // Not a name this service gives: the old CRM's (UPLOAD_DIR is its uploads folder), or another program's. A
        // crash leaves only files this service named; the bucket's prefix, by contrast, is the service's alone.
        out.line(`KEPT local:${file.key}: no row's file, and not named as this service names its files`);
        continue;
      }
      report.orphans++;
      listed++;
      const old = Date.now() - file.modified.getTime() > (options.orphanMinAgeMs ?? ORPHAN_MIN_AGE_MS);
      // With rows missing their files, UPLOAD_DIR or the prefix may be wrong: then nothing is removed.
      const removable = options.fix && old && report.problems === 0 && isValidKey(file.key);
      if (removable) {
        await removals.add(storage, file);
      } else {
        const why = !options.fix ? '' : !old ? ' (younger than an hour: kept)' : report.problems > 0 ? ' (kept: documents are missing their files)' : ' (kept)';
        out.line(`UNCLAIMED ${storage}:${file.key}${why}`);
      }
    }
    batch = [];
  };
  for await (const file of listing) {
    batch.push(file);
    if (batch.length >= 1_000) await flush();
  }
  if (batch.length > 0) await flush();
  await removals.finish(storage, listed);
}

function reportRemoval(out: Output, report: VerifyReport, storage: StorageName, key: string, outcome: Outcome): void {
  if (outcome === 'removed') {
    report.removed++;
    out.line(`REMOVED unclaimed ${storage}:${key}`);
  } else if (outcome === 'claimed') {
    // Recorded since it was listed (an upload's row, or a move's copy): no orphan after all.
    report.orphans--;
    out.line(`KEPT ${storage}:${key}: a row names it now`);
  } else if (outcome === 'unconfirmed') {
    out.line(`UNCLAIMED ${storage}:${key} (kept: writes to the table went on, so no row could be ruled out)`);
  } else {
    out.line(`UNCLAIMED ${storage}:${key} (kept: see REFUSED)`);
  }
}

