import { AppError } from '../errors';
import { isValidKey, type StorageDriver, StorageNotFoundError } from '../storage';
import type { DocumentRow } from './document';

/**
 * The file in a folder of UPLOAD_DIR that a row's file_path names, when that is not the file the row is read from.
 *
 * The old CRM wrote every file at the top of its uploads folder, so a row's stored name is the base name of its
 * file_path (migration 002). A CRM that kept files in folders breaks that: `uploads/1/notes.txt` and
 * `uploads/2/notes.txt` both become `notes.txt`, and two customers would share one file, which a move to S3 would
 * then make permanent. Such a row is found by its file_path's folders: each tail of it (`uploads/1/notes.txt`,
 * `1/notes.txt`) is looked for in UPLOAD_DIR. A row of this service's own (file_path is its stored name) costs nothing.
 */
export async function fileInFolderOf(
  local: StorageDriver,
  row: Pick<DocumentRow, 'storage' | 'file_path' | 'stored_file_name'>,
): Promise<string | undefined> {
  if (row.storage !== 'local' || !row.file_path) return undefined;
  const segments = row.file_path.split('/').filter(Boolean);
  for (let start = 0; start < segments.length - 1; start++) {
    const key = segments.slice(start).join('/');
    if (key === row.stored_file_name || !isValidKey(key)) continue;
    try {
      await local.stat(key);
      return key;
    } catch (err) {
      if (!(err instanceof StorageNotFoundError)) throw err;
    }
  }
  return undefined;
}

/** What the tools say of such a row, and what to do about it. */
export function fileInFolderProblem(row: Pick<DocumentRow, 'file_path' | 'stored_file_name'>, key: string): string {
  return (
    `its file_path ${JSON.stringify(row.file_path)} names ${key}, a file in a folder of UPLOAD_DIR, but it is read from ` +
    `${row.stored_file_name}: set its stored_file_name to the file that is its own (README, "Upgrading an existing CRM database")`
  );
}

/**
 * Refuses to serve a row fileInFolderOf finds: the file it would be read from may be another customer's. 409 with a
 * code of its own, not 404 (the file is there) nor 500 (nothing failed): an operator resolves it, as the tools say.
 */
export async function assertOwnFile(local: StorageDriver, row: Pick<DocumentRow, 'id' | 'storage' | 'file_path' | 'stored_file_name'>): Promise<void> {
  const inFolder = await fileInFolderOf(local, row);
  if (!inFolder) return;
  // Where the files lie is for the logs (the cause), not for the client.
  throw new AppError(
    'FILE_AMBIGUOUS',
    409,
    `Document ${row.id} is not served: its file cannot be told apart from another's until an operator names it (npm run storage:verify lists it)`,
    { cause: new Error(`document ${row.id}: ${fileInFolderProblem(row, inFolder)}`) },
  );
}
