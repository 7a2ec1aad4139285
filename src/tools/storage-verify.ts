import { parseArgs } from 'node:util';
import { type DocumentRow, namesSameFile, storageKeyOf } from '../documents/document';
import { digestOf } from '../documents/digest';
import { fileInFolderOf, fileInFolderProblem } from '../documents/legacy-path';
import { StorageNotFoundError } from '../storage';
import { describeTarget, HelpRequested, openToolContext, S3_NEEDED, type ToolContext, ToolError } from './context';
import { runTool, type Output } from './run';
import { findUnclaimed } from './unclaimed';

const USAGE = `Usage: npm run storage:verify -- [--deep] [--fix [--force]]

Checks every document row against storage (its file exists, its size matches; --deep also reads and hashes it) and
lists stored files and objects (under AWS_S3_PREFIX) that no row claims. Exit code 1 when anything is wrong.

  --deep   read every file and compare its sha256 with the row's
  --fix    remove unclaimed files older than an hour, and fill in missing sha256 values; each is looked at again
           first, a grace after it was listed (about 3 minutes), once no upload can be about to record it;
           nothing is removed from a store where more than a tenth of the files are no row's (a wrong database?)
  --force  with --fix: remove them even then
`;

const PAGE = 500;
const CONCURRENCY = 8;

export interface VerifyOptions {
  deep: boolean;
  fix: boolean;
  /** Unclaimed files younger than this are reported, never removed (tests shorten it). */
  orphanMinAgeMs?: number;
  /** How long a file to remove is held before it is looked at again and removed (removals.ts; tests shorten it). */
  removalGraceMs?: number;
  /** Remove even from a store where more than a tenth of the files are no row's. */
  force?: boolean;
  /** How many unclaimed files are held at once (removals.ts's HOLD_MAX; tests lower it). */
  holdMax?: number;
}

export interface VerifyReport {
  rows: number;
  /** Rows whose file is missing, or whose size or sha256 differ. */
  problems: number;
  /** Unclaimed files and objects found, and how many of them were removed. */
  orphans: number;
  removed: number;
  /** sha256 values filled in. */
  hashed: number;
}

export function parseVerifyArgs(argv: string[]): VerifyOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      deep: { type: 'boolean', default: false },
      fix: { type: 'boolean', default: false },
      force: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) throw new HelpRequested(USAGE);
  if (values.force && !values.fix) throw new ToolError('--force goes with --fix: it lets --fix remove files from a store where many are no row\'s');
  return { deep: values.deep, fix: values.fix, force: values.force };
}

export async function verifyStorage(ctx: ToolContext, options: VerifyOptions, out: Output): Promise<VerifyReport> {
  if (!ctx.storage.s3) {
    // Otherwise every such row would read as a problem of its own, and the cause would be lost among them.
    const [{ n }] = await ctx.db.query<{ n: string }>("SELECT count(*) AS n FROM customer_documents WHERE storage = 's3'");
    if (Number(n) > 0) throw new ToolError(`${n} documents are on S3, but S3 is not configured: ${S3_NEEDED}`);
  }
  const report: VerifyReport = { rows: 0, problems: 0, orphans: 0, removed: 0, hashed: 0 };
  await checkRows(ctx, options, out, report);
  await findUnclaimed(ctx, options, out, report);
  const unfixed = report.orphans - report.removed;
  out.line(
    `${report.rows} documents checked: ${report.problems} with a problem; ${report.orphans} unclaimed files` +
      (options.fix ? `, ${report.removed} removed; ${report.hashed} sha256 values filled in` : '') +
      (report.problems + unfixed === 0 ? ' — storage and database agree' : ''),
  );
  return report;
}

/** What a row's check reads. */
const ROW_COLUMNS = `id, customer_id, file_path, storage, COALESCE(stored_file_name, crm_file_basename(file_path)) AS stored_file_name,
  sha256, COALESCE(size_bytes, file_size) AS size`;

/** Every row, page by page, checked against its store, several at a time. */
async function checkRows(ctx: ToolContext, options: VerifyOptions, out: Output, report: VerifyReport): Promise<void> {
  for (let after = 0; ; ) {
    const rows = await ctx.db.query<DocumentRow>(`SELECT ${ROW_COLUMNS} FROM customer_documents WHERE id > $1 ORDER BY id LIMIT $2`, [
      after,
      PAGE,
    ]);
    if (rows.length === 0) return;
    const queue = [...rows];
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        for (let row = queue.shift(); row; row = queue.shift()) {
          report.rows++;
          const { checked, problem } = await checkRow(ctx, options, row, report);
          if (problem) {
            report.problems++;
            out.line(`PROBLEM document ${checked.id} (${checked.storage}:${storageKeyOf(checked) ?? 'no file'}): ${problem}`);
          }
        }
      }),
    );
    after = rows[rows.length - 1].id;
  }
}

const MISSING = 'the file is missing';

/**
 * The row's problem, if it has one. The service and the tools go on while this runs: a file not found is looked for
 * again where the row names it now, since a move to S3 (the background sync, storage:migrate) removes the local file
 * once the row has switched, and a delete removes it once the row is gone.
 */
async function checkRow(
  ctx: ToolContext,
  options: VerifyOptions,
  row: DocumentRow,
  report: VerifyReport,
): Promise<{ checked: DocumentRow; problem?: string }> {
  const problem = await checkFile(ctx, options, row, report);
  if (problem !== MISSING) return { checked: row, problem };
  const [now] = await ctx.db.query<DocumentRow>(`SELECT ${ROW_COLUMNS} FROM customer_documents WHERE id = $1`, [row.id]);
  if (!now) return { checked: row };
  if (namesSameFile(now, row)) return { checked: row, problem };
  // Reported where the row names its file now, which is where to look.
  return { checked: now, problem: await checkFile(ctx, options, now, report) };
}

async function checkFile(ctx: ToolContext, options: VerifyOptions, row: DocumentRow, report: VerifyReport): Promise<string | undefined> {
  const key = storageKeyOf(row);
  if (!key) return 'names no stored file';
  const recordedSize = row.size === null ? undefined : Number(row.size);
  try {
    // In the try: a row moved to S3 while this runs without S3 configured is one problem, not the end of the run.
    const driver = ctx.storage.driver(row.storage);
    const { size } = await driver.stat(key);
    const inFolder = await fileInFolderOf(ctx.storage.local, row);
    if (inFolder) return fileInFolderProblem(row, inFolder);
    if (recordedSize !== undefined && size !== recordedSize) return `size ${size}, the row says ${recordedSize}`;
    if (!options.deep && !(options.fix && !row.sha256)) return undefined;
    const read = await digestOf((await driver.get(key)).body);
    if (row.sha256 && read.sha256 !== row.sha256) return `sha256 ${read.sha256}, the row says ${row.sha256}`;
    if (!row.sha256 && options.fix) {
      await ctx.db.query('UPDATE customer_documents SET sha256 = $2, size_bytes = COALESCE(size_bytes, $3) WHERE id = $1 AND sha256 IS NULL', [
        row.id,
        read.sha256,
        read.size,
      ]);
      report.hashed++;
    }
    return undefined;
  } catch (err) {
    if (err instanceof StorageNotFoundError) {
      const inFolder = await fileInFolderOf(ctx.storage.local, row);
      return inFolder ? fileInFolderProblem(row, inFolder) : MISSING;
    }
    return `could not be read: ${(err as Error).message}`;
  }
}

async function main(argv: string[], out: Output): Promise<number> {
  const options = parseVerifyArgs(argv);
  const ctx = await openToolContext();
  try {
    out.line(describeTarget(ctx.config));
    const report = await verifyStorage(ctx, options, out);
    return report.problems > 0 || report.orphans > report.removed ? 1 : 0;
  } finally {
    await ctx.close();
  }
}

if (require.main === module) runTool(main);
