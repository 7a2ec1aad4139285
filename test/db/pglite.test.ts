import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createPgliteDb } from '../../src/db/pglite';

describe('the embedded database on disk', () => {
  let dir: string;
  beforeEach(async () => {
    dir = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'pglite-')), 'data');
  });
  afterEach(() => fs.rm(path.dirname(dir), { recursive: true, force: true }));

  test('keeps its data across a reopen', async () => {
    const first = await createPgliteDb(dir);
    await first.exec("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')");
    await first.close();
    const second = await createPgliteDb(dir);
    expect(await second.query('SELECT v FROM kept')).toEqual([{ v: 'still here' }]);
    await second.close();
  });

  test('a data directory in use is refused to a second opener, which gets it once the first lets go', async () => {
    const first = await createPgliteDb(dir);
    await expect(createPgliteDb(dir, { lockRetries: 1 })).rejects.toThrow(/is in use by another process/);
    const waiting = createPgliteDb(dir, { lockRetries: 10 });
    await new Promise((r) => setTimeout(r, 1500));
    await first.close();
    const second = await waiting;
    expect(await second.ping(1000)).toBe(true);
    await second.close();
  });
});
