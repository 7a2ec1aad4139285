import { parseArgs } from 'node:util';
import bytes from 'bytes';
import { MOVE_LOCK } from '../documents/locks';
import { moveToS3, S3NotAnswering } from '../documents/mover';
import { describeTarget, HelpRequested, openToolContext, type ToolContext, ToolError } from './context';
import { dryRun, localRows, requireS3, whyMissing } from './dry-run';
import { Progress } from './progress';
import { runTool, type Output } from './run';

const USAGE = `Usage: npm run storage:migrate -- [--dry-run] [--concurrency N] [--keep-local]

Moves every document stored on local disk (UPLOAD_DIR) to the configured S3 bucket: streamed, each copy checked
(size and sha256), the row switched to S3 in a transaction, and only then the local file removed. Safe to stop
(Ctrl-C, kill -9) and start again. On Postgres the service can keep running meanwhile; the embedded database
(no DATABASE_URL) serves one process, so stop the service first.

  --dry-run          list what would move (sizes on disk, the total) and what would not; change nothing
  --concurrency N    files moved at once (default 4)
  --keep-local       keep the local files after the move
`;

/** Without a terminal: one progress line per this many files. */
const LOG_EVERY = 100;

export interface MigrateOptions {
  dryRun: boolean;
  concurrency: number;
  keepLocal: boolean;
  /** Without a terminal: one progress line per this many files (default LOG_EVERY). */
  logEvery?: number;
}

export interface MigrateSummary {
  moved: number;
  bytes: number;
  /** Ids of rows whose local file is missing (the first LISTED; missingCount has them all). */
  missing: number[];
  missingCount: number;
  /** Failures, each named (the first LISTED; failedCount has them all). */
  failed: { id: number; error: string }[];
  failedCount: number;
  stopped: boolean;
}

/** How many missing rows and failures the summary keeps: a wrong UPLOAD_DIR on a million rows must not fill memory. */
const LISTED = 1_000;

export function parseMigrateArgs(argv: string[]): MigrateOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      'dry-run': { type: 'boolean', default: false },
      concurrency: { type: 'string', default: '4' },
      'keep-local': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) throw new HelpRequested(USAGE);
  const concurrency = Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) {
    throw new ToolError('--concurrency accepts a whole number from 1 to 64');
  }
  return { dryRun: values['dry-run'], concurrency, keepLocal: values['keep-local'] };
}

/**
 * Moves every local document to S3, once no other mover is at work: the service's background sync moves kept uploads,
 * which are local rows too, and a second storage:migrate started by mistake would move the same rows.
 */
export async function migrateToS3(
  ctx: ToolContext,
  options: MigrateOptions,
  out: Output,
  signal?: AbortSignal,
  { pollMs = 1_000 }: { pollMs?: number } = {},
): Promise<MigrateSummary> {
  requireS3(ctx);
  for (let waiting = false; !signal?.aborted; waiting = true) {
    const summary = await ctx.db.tryWithLock(MOVE_LOCK, (_session, lost) => moveAll(ctx, options, out, signal, lost));
    if (summary) return summary;
    if (!waiting) out.line("waiting: another move to S3 is under way (the service's background sync, or another storage:migrate)");
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
  out.line(STOPPED);
  return emptySummary(true);
}

const STOPPED = 'stopped before the end; run again to finish';

const emptySummary = (stopped: boolean): MigrateSummary => ({ moved: 0, bytes: 0, missing: [], missingCount: 0, failed: [], failedCount: 0, stopped });

async function moveAll(ctx: ToolContext, options: MigrateOptions, out: Output, signal: AbortSignal | undefined, lost: AbortSignal): Promise<MigrateSummary> {
  const [{ n, total }] = await ctx.db.query<{ n: string; total: string | null }>(
    "SELECT count(*) AS n, sum(COALESCE(size_bytes, file_size)) AS total FROM customer_documents WHERE storage = 'local'",
  );
  const summary = emptySummary(false);
  const progress = new Progress(out, Number(n), Number(total ?? 0), options.logEvery ?? LOG_EVERY);

  const rows = localRows(ctx);
  let s3Down: unknown;
  const worker = async () => {
    for (;;) {
      if (signal?.aborted || lost.aborted || s3Down) return;
      const next = await rows.next();
      if (next.done) return;
      const row = next.value;
      try {
        const outcome = await moveToS3(ctx, row, { keepLocal: options.keepLocal });
        if (outcome.result === 'moved') {
          summary.moved++;
          summary.bytes += outcome.bytes;
        } else if (outcome.result === 'missing') {
          if (summary.missingCount++ < LISTED) summary.missing.push(row.id);
          progress.report(`MISSING document ${row.id}: ${whyMissing(row.stored_file_name)} (left as it is)`);
        }
      } catch (err) {
        if (err instanceof S3NotAnswering) s3Down = err.cause;
        const failure = { id: row.id, error: describe(err) };
        if (summary.failedCount++ < LISTED) summary.failed.push(failure);
        progress.report(`FAILED document ${failure.id}: ${failure.error}`);
      }
      progress.tick(summary.bytes);
    }
  };
  // One shared page reader: workers take rows from it one at a time (an async generator serialises next()).
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  progress.stop();
  // A run killed between a row's switch and the removal of its local file left that removal queued: finish it.
  if (!s3Down) {
    for (let round = 0; round < 100; round++) {
      const { removed, failed } = await ctx.deletions.runDue();
      if (removed + failed === 0 || failed > 0) break;
    }
  }
  summary.stopped = Boolean(signal?.aborted || lost.aborted || s3Down);

  out.line(`moved ${summary.moved} files (${bytes.format(summary.bytes)}) to S3 in ${progress.seconds()} s`);
  if (summary.missingCount > 0) {
    const more = summary.missingCount > LISTED ? ` (the first ${LISTED})` : '';
    out.line(`${summary.missingCount} documents have no local file (left as they are): ids ${summary.missing.join(', ')}${more}`);
  }
  if (out.isTTY) for (const f of summary.failed) out.line(`FAILED document ${f.id}: ${f.error}`);
  if (summary.failedCount > 0) out.line(`${summary.failedCount} files failed; run again once the cause is fixed`);
  if (s3Down) out.line('stopped: S3 is not answering; run again once it is');
  else if (lost.aborted) out.line('stopped: the lock that keeps movers apart was lost with its database connection; run again');
  else if (signal?.aborted) out.line(STOPPED);
  return summary;
}

/** A failure in one line: S3's own error behind "not answering", so ops see a refused credential or a DNS error. */
function describe(err: unknown): string {
  if (err instanceof S3NotAnswering) {
    const cause = (err.cause as { cause?: { name?: string; message?: string } } | undefined)?.cause;
    return `S3 is not answering${cause ? ` (${cause.name ?? 'Error'}: ${cause.message})` : ''}`;
  }
  return String((err as Error)?.message ?? err);
}

/** 1 when any file failed or the run stopped before the end (S3 down, Ctrl-C): the next run has work left. */
export const exitCodeOf = (summary: MigrateSummary): number => (summary.failedCount > 0 || summary.stopped ? 1 : 0);

async function main(argv: string[], out: Output, signal: AbortSignal): Promise<number> {
  const options = parseMigrateArgs(argv);
  const ctx = await openToolContext();
  try {
    out.line(describeTarget(ctx.config));
    if (options.dryRun) {
      await dryRun(ctx, out);
      return 0;
    }
    return exitCodeOf(await migrateToS3(ctx, options, out, signal));
  } finally {
    await ctx.close();
  }
}

if (require.main === module) runTool(main);
