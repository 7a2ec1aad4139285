import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  assertValidKey,
  type ByteRange,
  FirstFailure,
  InvalidKeyError,
  RangeNotSatisfiableError,
  type StorageDriver,
  StorageNotFoundError,
  type StoredObject,
  StorageUnavailableError,
  resolveRange,
} from './driver';

/**
 * Where uploads are written before they are complete. Inside the root, so that the final rename stays on one
 * filesystem and is atomic; a dot-name, which no valid key can reach, so a partial file is never served.
 */
export const TEMP_DIR = '.tmp';

export class LocalDriver implements StorageDriver {
  readonly name = 'local' as const;
  private readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  /** The file for `key`, refusing anything that would resolve outside the root whatever a row says. */
  private pathOf(key: string): string {
    assertValidKey(key);
    const file = path.resolve(this.root, key);
    if (!file.startsWith(this.root + path.sep)) throw new InvalidKeyError(key);
    return file;
  }

  async put(key: string, body: Readable): Promise<void> {
    const failure = new FirstFailure().watch('body', body);
    const file = this.pathOf(key);
    const temp = path.join(this.root, TEMP_DIR, `${randomUUID()}.part`);
    try {
      await fs.mkdir(path.dirname(temp), { recursive: true });
      await fs.mkdir(path.dirname(file), { recursive: true });
    } catch (err) {
      body.destroy();
      throw failure.errorOf('body') ?? new StorageUnavailableError(err);
    }
    // flush: fsync before close, so a crash after the rename cannot leave a renamed but empty file.
    const out = createWriteStream(temp, { flags: 'wx', flush: true });
    failure.watch('store', out);
    try {
      await pipeline(body, out);
    } catch (err) {
      await fs.rm(temp, { force: true });
      throw failure.errorOf('body') ?? new StorageUnavailableError(err);
    }
    let renamed = false;
    try {
      await fs.rename(temp, file);
      renamed = true;
      await fsyncDirectory(path.dirname(file));
    } catch (err) {
      // A file renamed into place but not made durable is not stored: take it back rather than report a failure
      // and leave it behind.
      await fs.rm(renamed ? file : temp, { force: true });
      throw new StorageUnavailableError(err);
    }
  }

  async get(key: string, range?: ByteRange): Promise<StoredObject> {
    const file = this.pathOf(key);
    // Size and bytes come from one open file, so a file replaced in between cannot mix the two.
    const handle = await fs.open(file, 'r').catch((err) => {
      throw notFoundOr(err, key);
    });
    try {
      const stats = await handle.stat();
      if (!stats.isFile()) throw new StorageNotFoundError(key);
      const size = stats.size;
      const resolved = range ? resolveRange(range, size) : undefined;
      if (range && !resolved) throw new RangeNotSatisfiableError(size);
      const body = createReadStream('', { fd: handle, start: resolved?.start, end: resolved?.end });
      return { body, size, range: resolved };
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  async stat(key: string): Promise<{ size: number }> {
    const stats = await fs.stat(this.pathOf(key)).catch((err) => {
      throw notFoundOr(err, key);
    });
    if (!stats.isFile()) throw new StorageNotFoundError(key);
    return { size: stats.size };
  }

  async delete(key: string): Promise<void> {
    await fs.rm(this.pathOf(key), { force: true }).catch((err) => {
      throw new StorageUnavailableError(err);
    });
  }
}

function notFoundOr(err: NodeJS.ErrnoException, key: string): Error {
  // EISDIR/ENOTDIR: the key names a folder, or runs through a file; either way no document is there.
  if (err.code === 'ENOENT' || err.code === 'ENOTDIR' || err.code === 'EISDIR') {
    return new StorageNotFoundError(key, { cause: err });
  }
  return new StorageUnavailableError(err);
}

/** Makes a rename durable: the new directory entry survives a crash only once the directory itself is synced. */
async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
