import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { LocalDriver, TEMP_DIR } from '../../src/storage/local';
import { describeStorageDriver } from './conformance';

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
    await new Promise((r) => setTimeout(r, 50));
    expect(await fs.readdir(path.join(root, TEMP_DIR))).toHaveLength(1);
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

  test('a disk that cannot be written reports storage unavailable, not the client', async () => {
    // The root is a plain file: every write fails, as on a broken volume, whatever the user's privileges.
    const file = path.join(root, 'not-a-directory');
    await fs.writeFile(file, 'x');
    const broken = new LocalDriver(file);
    const err = await broken.put('x.txt', PassThrough.from(['data'])).catch((e) => e);
    expect(err).toMatchObject({ code: 'STORAGE_UNAVAILABLE', status: 503 });
  });
});
