import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { LocalDriver, TEMP_DIR } from '../../src/storage/local';
import { describeStorageDriver } from './conformance';
import { eventually } from '../helpers/wait';

describeStorageDriver('local disk', async () => {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'local-driver-'));
  return { driver: new LocalDriver(root), cleanup: () => fs.rm(root, { recursive: true, force: true }) };
});

describe('LocalDriver on disk', () => {
  let root: string;
  let driver: LocalDriver;
  beforeEach(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'local-driver-'));
    driver = new LocalDriver(root);
  });
  afterEach(() => fs.rm(root, { recursive: true, force: true }));

  test('writes to a temporary file and renames it into place; a failed upload leaves no temporary file', async () => {
    const body = new PassThrough();
    const done = driver.put('doc.pdf', body);
    body.write('partial');
    await eventually(async () => (await fs.readdir(path.join(root, TEMP_DIR)).catch(() => [])).length === 1, 5_000, 'the temporary file');
    await expect(fs.stat(path.join(root, 'doc.pdf'))).rejects.toMatchObject({ code: 'ENOENT' });
    body.destroy(new Error('aborted'));
    await expect(done).rejects.toThrow('aborted');
    expect(await fs.readdir(path.join(root, TEMP_DIR))).toEqual([]);
    expect(await fs.readdir(root)).toEqual([TEMP_DIR]);
  });

  test('a key that names a directory is not a file', async () => {
    await fs.mkdir(path.join(root, 'folder'));
    await expect(driver.get('folder')).rejects.toMatchObject({ code: 'FILE_NOT_FOUND' });
    await expect(driver.stat('folder')).rejects.toMatchObject({ code: 'FILE_NOT_FOUND' });
  });

  test('a link in the upload folder leads nowhere: not read, not statted, and a delete removes the link, not its target', async () => {
    const outside = await fs.mkdtemp(path.join(os.tmpdir(), 'outside-'));
    try {
      await fs.writeFile(path.join(outside, 'secret.txt'), 'not a document');
      // A file link, as an old CRM's row might name, and a folder link, on the way to a nested key.
      await fs.symlink(path.join(outside, 'secret.txt'), path.join(root, 'link.txt'));
      await fs.symlink(outside, path.join(root, 'dirlink'));
      for (const key of ['link.txt', 'dirlink/secret.txt']) {
        await expect(driver.get(key)).rejects.toMatchObject({ code: 'INVALID_STORAGE_KEY' });
        await expect(driver.stat(key)).rejects.toMatchObject({ code: 'INVALID_STORAGE_KEY' });
      }
      await driver.delete('link.txt');
      await expect(driver.delete('dirlink/secret.txt')).rejects.toMatchObject({ code: 'INVALID_STORAGE_KEY' });
      expect(await fs.readFile(path.join(outside, 'secret.txt'), 'utf8')).toBe('not a document');
      expect(await fs.readdir(root)).toEqual(['dirlink']);
    } finally {
      await fs.rm(outside, { recursive: true, force: true });
    }
  });

  test('an upload folder that is itself a link (a mounted volume) serves its files, nested ones too', async () => {
    const real = await fs.mkdtemp(path.join(os.tmpdir(), 'volume-'));
    try {
      await fs.mkdir(path.join(real, 'nested'));
      await fs.writeFile(path.join(real, 'nested', 'doc.txt'), 'kept');
      const linked = path.join(root, 'uploads-link');
      await fs.symlink(real, linked);
      const viaLink = new LocalDriver(linked);
      expect(await viaLink.stat('nested/doc.txt')).toEqual({ size: 4 });
      await viaLink.delete('nested/doc.txt');
      expect(await fs.readdir(path.join(real, 'nested'))).toEqual([]);
    } finally {
      await fs.rm(real, { recursive: true, force: true });
    }
  });

  test('a disk that cannot be written reports storage unavailable, not the client', async () => {
    // The root is a plain file: every write fails, as on a broken volume, whatever the user's privileges.
    const file = path.join(root, 'not-a-directory');
    await fs.writeFile(file, 'x');
    const broken = new LocalDriver(file);
    const err = await broken.put('x.txt', PassThrough.from(['data'])).catch((e) => e);
    expect(err).toMatchObject({ code: 'STORAGE_UNAVAILABLE', status: 503 });
  });
});
