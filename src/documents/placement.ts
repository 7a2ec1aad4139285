import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { StorageName } from '../config';
import type { Logger } from '../logger';
import { type Storage, StorageUnavailableError } from '../storage';
import { EveryBranchFailed, Tee } from '../storage/tee';

/** Where an upload's bytes ended up. */
export interface Placement {
  readonly storage: StorageName;
  readonly key: string;
  /** 's3' when S3 failed and the bytes were kept on local disk instead, to be moved by the sync job. */
  readonly pendingStorage: StorageName | null;
}

export interface PlacementTarget {
  readonly storedFileName: string;
  /** The key the bytes get on S3; on local disk it is the stored file name. */
  readonly s3Key: string;
  readonly contentType: string;
}

export interface PlacementOptions {
  fallback: 'local' | 'fail';
  logger: Logger;
  /**
   * Takes care of an S3 key a failed upload may have left behind, which no row will ever name: S3 may hold an object
   * whose answer it never gave (the reply lost, a completion timed out), or one the body's failure came too late
   * for. The service queues it for the deletion queue, which removes it once S3 answers (DocumentsService).
   */
  leftover(key: string): Promise<void>;
}

/**
 * Streams `body` (already checked on the way, see UploadInspector) into the primary store. With S3 primary and
 * S3_FALLBACK=local the same bytes go, at the same pace, to a temporary file on local disk: when S3 succeeds that
 * file is dropped; when S3 fails, at any point of the upload, the file is committed under the stored name and the
 * upload is still accepted. Either way the body is read once and never held whole in memory. A failure of the
 * body itself (the client left, a check failed) rejects with its own error and leaves nothing anywhere.
 */
export async function placeUpload(
  storage: Storage,
  body: Readable,
  target: PlacementTarget,
  options: PlacementOptions & { sizeAtMost?: number },
): Promise<Placement> {
  // Before a byte is read: an upload that must wait for room pauses its client, and one refused reads nothing more.
  const gone = new AbortController();
  const stop = () => gone.abort(body.errored ?? new Error('The upload stopped before its end'));
  if (body.destroyed) stop();
  else body.once('close', stop);
  let release: () => void;
  try {
    release = await storage.admitUpload(options.sizeAtMost, gone.signal);
  } finally {
    body.off('close', stop);
  }
  try {
    return await place(storage, body, target, options);
  } finally {
    release();
  }
}

async function place(storage: Storage, body: Readable, target: PlacementTarget, options: PlacementOptions): Promise<Placement> {
  const primary = storage.primary;
  if (primary.name === 'local') {
    await primary.put(target.storedFileName, body, { contentType: target.contentType });
    return { storage: 'local', key: target.storedFileName, pendingStorage: null };
  }
  if (options.fallback === 'fail') {
    try {
      await primary.put(target.s3Key, body, { contentType: target.contentType });
    } catch (err) {
      if (err instanceof StorageUnavailableError) await options.leftover(target.s3Key);
      throw err;
    }
    return { storage: 's3', key: target.s3Key, pendingStorage: null };
  }

  const tee = new Tee(2);
  const [toS3, toDisk] = tee.branches;
  const fed = pipeline(body, tee).catch((err: unknown) => err);
  const [s3, disk] = await Promise.allSettled([
    primary.put(target.s3Key, toS3, { contentType: target.contentType }),
    storage.local.stage(toDisk),
  ]);
  const fedError = await fed;
  const bodyError = fedError instanceof EveryBranchFailed ? undefined : fedError;
  if (bodyError) {
    // The client's failure, not a store's: nothing is kept (an S3 copy that completed is taken back).
    if (s3.status === 'fulfilled') await options.leftover(target.s3Key);
    if (disk.status === 'fulfilled') await disk.value.discard();
    throw bodyError;
  }
  if (s3.status === 'fulfilled') {
    if (disk.status === 'fulfilled') await disk.value.discard();
    return { storage: 's3', key: target.s3Key, pendingStorage: null };
  }
  if (disk.status === 'rejected') {
    await options.leftover(target.s3Key);
    throw s3.reason;
  }
  options.logger.warn(
    { err: s3.reason, key: target.storedFileName },
    'S3 failed during an upload; it is kept on local disk and moves to S3 once S3 answers again',
  );
  try {
    await disk.value.commit(target.storedFileName);
  } catch (err) {
    await options.leftover(target.s3Key);
    throw new StorageUnavailableError(err);
  }
  return { storage: 'local', key: target.storedFileName, pendingStorage: 's3' };
}
