import { pipeline } from 'node:stream/promises';
import type { Config } from '../config';
import type { Db } from '../db';
import { isValidKey, type Storage, StorageBusyError, StorageNotFoundError, StorageUnavailableError } from '../storage';
import { enqueueFileDeletions, type FileDeletions } from './deletions';
import { type DocumentRow, mimeTypeOf, s3KeyFor } from './document';
import { Digest, digestOf } from './digest';
import { fileInFolderOf, fileInFolderProblem } from './legacy-path';
import * as repo from './repository';

/** S3 failed (after the client's retries): a caller moving many documents stops, since the rest would fail alike. */
export class S3NotAnswering extends Error {}

export type MoveOutcome =
  | { result: 'moved'; bytes: number }
  /** The row names a local file that is not there. */
  | { result: 'missing' }
  /** The row was deleted or moved by someone else meanwhile: nothing left to do. */
  | { result: 'gone' };

export interface MoverDeps {
  db: Db;
  storage: Storage;
  config: Config;
  deletions: FileDeletions;
}

/**
 * Moves one document from local disk to S3: copy, check, switch, and only then remove the local copy. The caller
 * holds MOVE_LOCK (locks.ts), so no other move of the row, and no removal of its leftover copy, runs meanwhile. Each step is
 * safe to repeat, so a move cut short (a crash, Ctrl-C) is finished by the next attempt:
 * - an object another row already names (an old CRM file two rows share, one of them moved) is checked against
 *   the local file, never written over;
 * - the S3 key is fixed by the row (prefix/customer/stored name), so copying again overwrites the same object;
 * - the bytes are checked twice: on the way, against the recorded sha256 and size (computed here, and stored, for
 *   rows from before this service), and in S3, by reading the copy back;
 * - the row switches in one transaction that queues the local copy for removal (or, with keepLocal, keeps it); a row
 *   deleted or moved meanwhile does not switch, and the copy is queued instead; nor does one whose copy is gone by
 *   then: a mover can lose MOVE_LOCK with its connection before it knows, and a leftover's removal run meanwhile;
 * - the deletion queue keeps any file a row still names, so concurrent movers lose nothing.
 */
export async function moveToS3(deps: MoverDeps, row: DocumentRow, { keepLocal = false } = {}): Promise<MoveOutcome> {
  const { db, storage, config, deletions } = deps;
  const s3 = storage.s3;
  if (!s3) throw new Error('S3 is not configured (AWS_S3_BUCKET_NAME)');
  const name = row.stored_file_name;
  // A name no driver may use (an old CRM's dot-file) is served as missing, and moves nowhere either.
  if (!name || !isValidKey(name)) return { result: 'missing' };
  const key = s3KeyFor(config.storage.s3?.prefix, row.customer_id, name);
  // Copied, the wrong file would be this row's for good, and file_path, the only record of where its own lies, gone.
  const inFolder = await fileInFolderOf(storage.local, row);
  if (inFolder) throw new Error(`document ${row.id}: ${fileInFolderProblem(row, inFolder)}; it stays on local disk`);

  let local;
  try {
    local = await storage.local.get(name);
  } catch (err) {
    if (!(err instanceof StorageNotFoundError)) throw err;
    const now = await repo.findDocument(db, row.customer_id, row.id);
    return now?.storage === 'local' ? { result: 'missing' } : { result: 'gone' };
  }
  // An old CRM row sharing this file may have moved already, its object at this very key. Copying again could only
  // replace those bytes with whatever the local file holds now: the object is compared with it, never written.
  // Unless it is gone: then copying puts back the other row's bytes too.
  const inUse = (await repo.isS3KeyInUse(db, name, key)) && (await onS3(() => exists(s3, key)));
  let expected: { size: number; sha256: string };
  if (inUse) {
    expected = await digestOf(local.body);
  } else {
    const sent = new Digest();
    const read = pipeline(local.body, sent).catch((err: unknown) => err);
    // mimeTypeOf, not the raw column: an old CRM row's file_type may be anything, even text no header can carry.
    await onS3(() => s3.put(key, sent, { contentType: mimeTypeOf(row) }));
    const readError = await read;
    if (readError) throw readError;
    expected = { size: sent.byteCount, sha256: sent.digest() };
  }

  const recordedSize = row.size === null ? undefined : Number(row.size);
  const stored = await onS3(async () => digestOf((await s3.get(key)).body));
  const problem =
    (row.sha256 && row.sha256 !== expected.sha256 && 'the local file does not match its recorded sha256') ||
    (recordedSize !== undefined &&
      recordedSize !== expected.size &&
      `the local file has ${expected.size} bytes, the row says ${recordedSize} (if the file is right, clear the row's ` +
        `file_size and size_bytes: README, "Moving existing files to S3")`) ||
    ((stored.size !== expected.size || stored.sha256 !== expected.sha256) && 'the copy on S3 differs from the local file');
  if (problem) {
    // The copy this move wrote goes through the queue, which keeps it while another row names the file (a twin
    // may be moving onto it) or this row has been switched to it by another mover meanwhile. An object another row
    // already had is not this move's to remove.
    if (!inUse) {
      await deletions.run(await enqueueFileDeletions(db, [{ storage: 's3', key, storedFileName: name, documentId: row.id }]), {
        moveLockHeld: true,
      });
    }
    throw new Error(`document ${row.id}: ${problem}; it stays on local disk`);
  }

  const { switched, queued } = await db.transaction(async (tx) => {
    const switched = await repo.switchToS3(tx, row.id, key, expected);
    // The row is locked now. A removal of a leftover copy at this key holds that lock while it checks and removes
    // (FileDeletions), so the copy there now stays until this commits, and the row then names it. One that ran
    // before (this mover's MOVE_LOCK lost with its connection, another instance's cleanup taking it) has removed
    // the copy: the switch is undone, and the document stays on local disk for the next pass.
    if (switched && !(await onS3(() => exists(s3, key)))) {
      throw new Error(`document ${row.id}: its copy on S3 was removed before the switch; it stays on local disk`);
    }
    const leftover = switched
      ? keepLocal
        ? undefined
        : { storage: 'local' as const, key: name, storedFileName: name, documentId: row.id }
      : inUse
        ? undefined
        : { storage: 's3' as const, key, storedFileName: name, documentId: row.id };
    return { switched, queued: leftover ? await enqueueFileDeletions(tx, [leftover]) : [] };
  });
  await deletions.run(queued, { moveLockHeld: true });
  return switched ? { result: 'moved', bytes: expected.size } : { result: 'gone' };
}

async function exists(s3: NonNullable<Storage['s3']>, key: string): Promise<boolean> {
  try {
    await s3.stat(key);
    return true;
  } catch (err) {
    if (err instanceof StorageNotFoundError) return false;
    throw err;
  }
}

async function onS3<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    if (err instanceof StorageUnavailableError) throw new S3NotAnswering('S3 is not answering', { cause: err });
    // Every download connection held by clients: the read-back of a copy waits behind them, and the pass stops
    // rather than fail each document after QUEUE_TIMEOUT.
    if (err instanceof StorageBusyError) throw new S3NotAnswering('every S3 download connection is busy', { cause: err });
    throw err;
  }
}
