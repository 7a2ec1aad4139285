import bytes from 'bytes';
import type { DocumentRow } from '../documents/document';
import { fileInFolderOf, fileInFolderProblem } from '../documents/legacy-path';
import * as repo from '../documents/repository';
import { InvalidKeyError, isValidKey, StorageNotFoundError } from '../storage';
import { S3_NEEDED, type ToolContext, ToolError } from './context';
import type { Output } from './run';

const PAGE = 200;

/** The local documents, page by page in id order: what storage:migrate moves. */
export async function* localRows(ctx: ToolContext): AsyncGenerator<DocumentRow> {
  for (let after = 0; ; ) {
    const rows = await repo.listLocalDocuments(ctx.db, after, PAGE);
    if (rows.length === 0) return;
    yield* rows;
    after = rows[rows.length - 1].id;
  }
}

/**
 * What a run would do with each local document, from its file as it is (its size on disk, not the row's, which an
 * old CRM's rows may lack or have wrong), without reading or copying a byte: moved, or kept back as the run would
 * keep it (no file, a file of another size than the row records, a file in a folder). Changes nothing.
 */
export async function dryRun(ctx: ToolContext, out: Output): Promise<{ files: number; bytes: number; kept: number }> {
  // As the real run would refuse: a dry run that passes promises a run that can start.
  requireS3(ctx);
  let files = 0;
  let total = 0;
  let kept = 0;
  for await (const row of localRows(ctx)) {
    const outcome = await preview(ctx, row);
    if ('problem' in outcome) {
      kept++;
      out.line(`would not move document ${row.id} (customer ${row.customer_id}): ${outcome.problem}`);
      continue;
    }
    files++;
    total += outcome.size;
    out.line(`would move document ${row.id} (customer ${row.customer_id}, ${row.stored_file_name}, ${bytes.format(outcome.size)})`);
  }
  out.line(
    `${files} files, ${bytes.format(total)} in all, would move to S3 bucket ${ctx.config.storage.s3?.bucket}` +
      (kept > 0 ? `; ${kept} would not (listed above)` : ''),
  );
  return { files, bytes: total, kept };
}

/** The checks a move makes before its first byte (mover.ts), on the file's size alone. */
async function preview(ctx: ToolContext, row: DocumentRow): Promise<{ size: number } | { problem: string }> {
  const name = row.stored_file_name;
  if (!name || !isValidKey(name)) return { problem: whyMissing(name) };
  const inFolder = await fileInFolderOf(ctx.storage.local, row);
  if (inFolder) return { problem: fileInFolderProblem(row, inFolder) };
  let size: number;
  try {
    ({ size } = await ctx.storage.local.stat(name));
  } catch (err) {
    if (err instanceof StorageNotFoundError || err instanceof InvalidKeyError) return { problem: whyMissing(name) };
    throw err;
  }
  const recorded = row.size === null ? undefined : Number(row.size);
  if (recorded !== undefined && recorded !== size) return { problem: `its file has ${size} bytes, the row says ${recorded}: it would stay local` };
  return { size };
}

/** What a move needs, for the dry run as for the real one. */
export function requireS3(ctx: ToolContext): void {
  if (!ctx.storage.s3) throw new ToolError(`S3 is not configured: ${S3_NEEDED}`);
}

/** Why a row's file cannot move: none named, a name no store may use, or none there. */
export function whyMissing(name: string | null): string {
  if (!name) return 'its file_path names no file';
  return isValidKey(name) ? `no local file ${name}` : `its file ${JSON.stringify(name)} has a name no store may use (served as missing)`;
}
