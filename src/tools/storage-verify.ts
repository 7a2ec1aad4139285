import { parseArgs } from 'node:util';
import type { StorageName } from '../config';
import { type DocumentRow, namesSameFile, storageKeyOf } from '../documents/document';
import { digestOf } from '../documents/digest';
import { isStoredFileName } from '../documents/file-name';
import { fileInFolderOf, fileInFolderProblem } from '../documents/legacy-path';
import { isValidKey, StorageNotFoundError } from '../storage';
import { HelpRequested, openToolContext, S3_NEEDED, type ToolContext, ToolError } from './context';
import { listBucket, type Listed, walkLocal } from './listings';
import { claimOf, namesIn, rowsNaming } from './orphans';
import { runTool, type Output } from './run';

const USAGE = `Usage: npm run storage:verify -- [--deep] [--fix]

Checks every document row against storage (its file exists, its size matches; --deep also reads and hashes it) and
lists stored files and objects (under AWS_S3_PREFIX) that no row claims. Exit code 1 when anything is wrong.

  --deep   read every file and compare its sha256 with the row's
  --fix    remove unclaimed files older than an hour, and fill in missing sha256 values
`;

const PAGE = 500;
const CONCURRENCY = 8;
/** An unclaimed file younger than this may be an upload whose row is about to be written: never removed. */
const ORPHAN_MIN_AGE_MS = 60 * 60 * 1000;

export interface VerifyOptions {
  deep: boolean;
  fix: boolean;
  /** Unclaimed files younger than this are reported, never removed (tests shorten it). */
  orphanMinAgeMs?: number;
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
    options: { deep: { type: 'boolean', default: false }, fix: { type: 'boolean', default: false }, help: { type: 'boolean', default: false } },
  });
  if (values.help) throw new HelpRequested(USAGE);
  return { deep: values.deep, fix: values.fix };
}

export async function verifyStorage(ctx: ToolContext, options: VerifyOptions, out: Output): Promise<VerifyReport> {
  if (!ctx.storage.s3) {
    // Otherwise every such row would read as a problem of its own, and the cause would be lost among them.
    const [{ n }] = await ctx.db.query<{ n: string }>("SELECT count(*) AS n FROM customer_documents WHERE storage = 's3'");
    if (Number(n) > 0) throw new ToolError(`${n} documents are on S3, but S3 is not configured: ${S3_NEEDED}`);
  }
  const report: VerifyReport = { rows: 0, problems: 0, orphans: 0, removed: 0, hashed: 0 };
  await checkRows(ctx, options, out, report);
  // The embedded database's files, should PGLITE_DATA_DIR lie inside UPLOAD_DIR (one volume for both), are no
  // document's: never listed, let alone removed.
  const pglite = ctx.config.database.pgliteDataDir;
  await findOrphans(ctx, options, out, report, 'local', walkLocal(ctx.config.storage.uploadDir, new Set([pglite, `${pglite}.lock`])));
  if (ctx.storage.s3 && ctx.config.storage.s3) {
    await findOrphans(ctx, options, out, report, 's3', listBucket(ctx.storage.s3.client, ctx.config.storage.s3.bucket, ctx.config.storage.s3.prefix));
  }
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

/**
 * Streams a store's listing in batches and asks the database which of each batch a row claims (by the stored names
 * a key can hold, which are indexed, then by exact key: orphans.ts): a million files never sit in memory at once.
 */
async function findOrphans(
  ctx: ToolContext,
  options: VerifyOptions,
  out: Output,
  report: VerifyReport,
  storage: StorageName,
  listing: AsyncGenerator<Listed>,
): Promise<void> {
  const s3Prefix = ctx.config.storage.s3?.prefix;
  let batch: Listed[] = [];
  const flush = async () => {
    const rows = await rowsNaming(ctx.db, batch.flatMap((f) => namesIn(f.key)));
    for (const file of batch) {
      const claim = claimOf(storage, file, rows, s3Prefix);
      if (claim === 'claimed') continue;
      if (claim === 'named') {
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
      const old = Date.now() - file.modified.getTime() > (options.orphanMinAgeMs ?? ORPHAN_MIN_AGE_MS);
      // With rows missing their files, UPLOAD_DIR or the prefix may be wrong: then nothing is removed.
      const removable = options.fix && old && report.problems === 0 && isValidKey(file.key);
      // Asked again right before the removal: a row written since the batch was read keeps its file.
      if (removable && claimOf(storage, file, await rowsNaming(ctx.db, namesIn(file.key)), s3Prefix) === undefined) {
        await ctx.storage.driver(storage).delete(file.key);
        report.removed++;
        out.line(`REMOVED unclaimed ${storage}:${file.key}`);
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
}

async function main(argv: string[], out: Output): Promise<number> {
  const options = parseVerifyArgs(argv);
  const ctx = await openToolContext();
  try {
    const report = await verifyStorage(ctx, options, out);
    return report.problems > 0 || report.orphans > report.removed ? 1 : 0;
  } finally {
    await ctx.close();
  }
}

if (require.main === module) runTool(main);
