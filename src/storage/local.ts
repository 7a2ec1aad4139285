import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
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

const WRITE_BUFFER_BYTES = 1024 * 1024;

export interface StagedFile {
  commit(key: string): Promise<void>;
  discard(): Promise<void>;
}

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

  /**
   * As pathOf, for a file that is read or removed: a symlinked folder on the way (a shared volume, the old CRM, a
   * restore) must not lead a key to a file elsewhere, so the folder, links resolved, must lie in the root, links
   * resolved too (the root itself may be a link to a volume). The file itself is opened without following a link.
   */
  private async existingPathOf(key: string): Promise<string> {
    const file = this.pathOf(key);
    const dir = path.dirname(file);
    if (dir === this.root) return file;
    const [realDir, realRoot] = await Promise.all([fs.realpath(dir), fs.realpath(this.root)]).catch((err) => {
      throw notFoundOr(err, key);
    });
    if (!(realDir + path.sep).startsWith(realRoot + path.sep)) throw new InvalidKeyError(key);
    return file;
  }

  async put(key: string, body: Readable): Promise<void> {
    const staged = await this.stage(body, { durable: true });
    await staged.commit(key);
  }

  /**
   * Writes `body` in full to a temporary file that no key reaches. `commit` makes it the object at a key (fsync,
   * rename, fsync of the directory); `discard` removes it. Lets a caller keep an upload on disk only when another
   * store fails (see documents/placement.ts). Rejects as put does, leaving nothing behind. `durable`: the caller
   * means to commit, so the file is synced as its stream closes rather than opened again for it at commit.
   */
  async stage(body: Readable, { durable = false } = {}): Promise<StagedFile> {
    const failure = new FirstFailure().watch('body', body);
    const temp = path.join(this.root, TEMP_DIR, `${randomUUID()}.part`);
    try {
      await fs.mkdir(path.dirname(temp), { recursive: true });
    } catch (err) {
      body.destroy();
      throw failure.errorOf('body') ?? new StorageUnavailableError(err);
    }
    // A 1 MiB buffer, not the default 16 KiB: chunks that arrive while a write is in flight go out together in one
    // writev, and the socket keeps being read meanwhile. A 64 MB upload ran 9-26% faster with 35% less CPU (bench).
    const out = createWriteStream(temp, { flags: 'wx', flush: durable, highWaterMark: WRITE_BUFFER_BYTES });
    failure.watch('store', out);
    try {
      await pipeline(body, out);
    } catch (err) {
      // A body that fails at once can beat the file's own opening, which then still creates it: wait for the
      // stream to close (its open finished and undone) before removing what it may have created.
      if (!out.closed) await once(out, 'close').catch(() => undefined);
      await fs.rm(temp, { force: true });
      throw failure.errorOf('body') ?? new StorageUnavailableError(err);
    }
    return {
      commit: (key) => this.commit(temp, key, durable),
      discard: () => fs.rm(temp, { force: true }),
    };
  }

  private async commit(temp: string, key: string, synced: boolean): Promise<void> {
    let renamed = false;
    let file: string | undefined;
    try {
      file = this.pathOf(key);
      await fs.mkdir(path.dirname(file), { recursive: true });
      // The bytes first, then the name: a crash after the rename cannot leave a renamed but empty file.
      if (!synced) {
        const handle = await fs.open(temp, 'r+');
        try {
          await handle.sync();
        } finally {
          await handle.close();
        }
      }
      await fs.rename(temp, file);
      renamed = true;
      await fsyncDirectory(path.dirname(file));
    } catch (err) {
      // A file renamed into place but not made durable is not stored: take it back rather than report a failure
      // and leave it behind.
      await fs.rm(renamed && file ? file : temp, { force: true });
      throw err instanceof InvalidKeyError ? err : new StorageUnavailableError(err);
    }
  }

  /**
   * Removes temporary files untouched for `olderThanMs`: uploads cut off by a crash. An upload in progress writes
   * its file continuously (a client that goes quiet is cut off after IDLE_TIMEOUT_MS), so its file is never that
   * old, even when another instance shares the directory. Returns how many were removed.
   */
  async sweepTemporaryFiles(olderThanMs: number): Promise<number> {
    const dir = path.join(this.root, TEMP_DIR);
    const names = await fs.readdir(dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return [];
      throw new StorageUnavailableError(err);
    });
    let removed = 0;
    for (const name of names) {
      const file = path.join(dir, name);
      const stats = await fs.stat(file).catch(() => undefined);
      if (!stats?.isFile() || Date.now() - stats.mtimeMs < olderThanMs) continue;
      await fs.rm(file, { force: true });
      removed++;
    }
    return removed;
  }

  async get(key: string, range?: ByteRange): Promise<StoredObject> {
    const file = await this.existingPathOf(key);
    // Size and bytes come from one open file, so a file replaced in between cannot mix the two.
    const handle = await fs.open(file, fs.constants.O_RDONLY | NO_FOLLOW).catch((err) => {
      // A link where a stored file should be: not one the service wrote, and not to be served (see existingPathOf).
      if (err.code === 'ELOOP') throw new InvalidKeyError(key);
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
    const stats = await fs.lstat(await this.existingPathOf(key)).catch((err) => {
      throw notFoundOr(err, key);
    });
    if (stats.isSymbolicLink()) throw new InvalidKeyError(key);
    if (!stats.isFile()) throw new StorageNotFoundError(key);
    return { size: stats.size };
  }

  async check(): Promise<void> {
    try {
      await fs.mkdir(this.root, { recursive: true });
      await fs.access(this.root, fs.constants.W_OK);
    } catch (err) {
      throw new StorageUnavailableError(err);
    }
  }

  async delete(key: string): Promise<void> {
    // rm removes a link itself, never what it points at; a folder on the way is checked as for a read.
    const file = await this.existingPathOf(key).catch((err) => {
      if (err instanceof StorageNotFoundError) return undefined;
      throw err;
    });
    if (!file) return;
    await fs.rm(file, { force: true }).catch((err) => {
      throw new StorageUnavailableError(err);
    });
  }
}

/** Where the platform has it (not on Windows): open fails on a link rather than following it. */
const NO_FOLLOW = fs.constants.O_NOFOLLOW ?? 0;

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
