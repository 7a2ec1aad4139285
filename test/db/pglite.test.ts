import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createPgliteDb } from '../../src/db/pglite';
import { DatabaseUnavailableError, DataDirLostError } from '../../src/errors';
import { pgliteTemplate } from '../helpers/db';
import { startServerProcess } from '../helpers/process';
import { eventually } from '../helpers/wait';

const fsyncOf = fsSync.fsyncSync;
/** Tests that start service processes: each start may take 60 s on a loaded machine (startServerProcess). */
const PROCESS_TEST_MS = 90_000;

describe('the embedded database on disk', () => {
  let dir: string;
  // Each test's directory gets its cluster from the run's template (test/global-setup.ts) rather than making one.
  let template: Blob | undefined;
  beforeEach(async () => {
    template = await pgliteTemplate();
    dir = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'pglite-')), 'data');
  });
  afterEach(() => fs.rm(path.dirname(dir), { recursive: true, force: true }));

  test('keeps its data across a reopen', async () => {
    const first = await createPgliteDb(dir, { template });
    await first.exec("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')");
    await first.close();
    const second = await createPgliteDb(dir);
    expect(await second.query('SELECT v FROM kept')).toEqual([{ v: 'still here' }]);
    await second.close();
  });

  test('a commit reaches the disk: Postgres runs with fsync on, and each commit syncs the WAL file it wrote', async () => {
    const db = await createPgliteDb(dir, { template });
    // Which files are synced, by the path of each descriptor: a spy that passes every call on to the real fsync.
    const synced: string[] = [];
    const folders: string[] = [];
    const fsyncSync = jest.spyOn(fsSync, 'fsyncSync').mockImplementation(function (this: unknown, fd: number) {
      const file = fsSync.readlinkSync(`/proc/self/fd/${fd}`);
      (fsSync.fstatSync(fd).isDirectory() ? folders : synced).push(file);
      return fsyncOf.call(this, fd);
    });
    try {
      expect(await db.query('SHOW fsync')).toEqual([{ fsync: 'on' }]);
      await db.exec('CREATE TABLE kept (v text)');
      synced.length = 0;
      for (let i = 0; i < 3; i++) await db.query('INSERT INTO kept VALUES ($1)', [`row ${i}`]);
      // One sync per commit, each of a segment in pg_wal.
      expect(synced).toHaveLength(3);
      for (const file of synced) expect(file).toMatch(new RegExp(`^${dir}/pg_wal/[0-9A-F]{24}$`));
      // A checkpoint syncs the data files, and the folders whose entries changed.
      synced.length = 0;
      await db.exec('CHECKPOINT');
      expect(synced.some((file) => file.startsWith(`${dir}/base/`))).toBe(true);
      expect(folders.some((folder) => folder.startsWith(`${dir}/`))).toBe(true);
    } finally {
      fsyncSync.mockRestore();
      await db.close();
    }
  });

  test('a new cluster (the first start, with no template) reaches the disk before it is handed out: every file and folder is synced once it opens', async () => {
    const synced = new Set<string>();
    const open = fsSync.promises.open;
    const opened = jest.spyOn(fsSync.promises, 'open').mockImplementation(async (...args: Parameters<typeof open>) => {
      const handle = await open(...args);
      const sync = handle.sync.bind(handle);
      handle.sync = async () => {
        await sync();
        synced.add(String(args[0]));
      };
      return handle;
    });
    let db;
    try {
      db = await createPgliteDb(dir);
    } finally {
      opened.mockRestore();
    }
    try {
      for (const file of ['PG_VERSION', 'global/pg_control', 'global', 'base', '']) expect(synced).toContain(path.join(dir, file));
      // Not a sample: every entry of the cluster as made.
      const entries = await fs.readdir(dir, { recursive: true });
      const unsynced = entries.map((entry) => path.join(dir, entry)).filter((file) => !synced.has(file));
      expect(unsynced).toEqual([]);
    } finally {
      await db.close();
    }
  }, 60_000); // making a cluster takes 5-10 s, more on a loaded machine

  test('a data directory in use is refused to a second opener, which gets it once the first lets go', async () => {
    const first = await createPgliteDb(dir, { template });
    await expect(createPgliteDb(dir, { lockRetries: 1 })).rejects.toThrow(/is in use by another process/);
    const waiting = createPgliteDb(dir, { lockRetries: 10 });
    await new Promise((r) => setTimeout(r, 1500));
    await first.close();
    const second = await waiting;
    expect(await second.ping(1000)).toBe(true);
    await second.close();
  });

  test('the lock of a holder killed on this machine is taken once no longer refreshed; a live or fresh holder keeps it', async () => {
    // What a process killed with SIGKILL leaves: a fresh lock and an owner file naming a pid that is gone.
    const dead = spawnSync(process.execPath, ['-e', '']).pid;
    await fs.mkdir(dir, { recursive: true });
    const stopped = new Date(Date.now() - 10_000); // the holder died 10 s ago: its lock stopped being refreshed
    await fs.mkdir(`${dir}.lock`);
    await fs.utimes(`${dir}.lock`, stopped, stopped);
    const owner = path.join(dir, 'document-store.owner.json');
    await fs.writeFile(owner, JSON.stringify({ pid: dead, hostname: os.hostname() }));
    const db = await createPgliteDb(dir, { lockRetries: 0, template });
    expect(await db.ping(1000)).toBe(true);
    await db.close();

    // The same, but the owner is alive (this test's parent process): the lock holds.
    await fs.mkdir(`${dir}.lock`);
    await fs.utimes(`${dir}.lock`, stopped, stopped);
    await fs.writeFile(owner, JSON.stringify({ pid: process.ppid, hostname: os.hostname() }));
    await expect(createPgliteDb(dir, { lockRetries: 0 })).rejects.toThrow(/is in use by another process/);
    // And a dead owner whose lock was refreshed a moment ago (a new holder that has not written its pid yet).
    await fs.writeFile(owner, JSON.stringify({ pid: dead, hostname: os.hostname() }));
    const now = new Date();
    await fs.utimes(`${dir}.lock`, now, now);
    await expect(createPgliteDb(dir, { lockRetries: 0 })).rejects.toThrow(/is in use by another process/);
    await fs.rm(`${dir}.lock`, { recursive: true });
  });

  /** What another process taking the lock over does to it (proper-lockfile): a lock directory of its own mtime. */
  const takeOver = async () => {
    const later = new Date(Date.now() + 60_000);
    await fs.utimes(`${dir}.lock`, later, later);
  };

  test('a holder whose lock is taken over closes the database at once and reports it, rather than write beside another', async () => {
    const errors: Error[] = [];
    const db = await createPgliteDb(dir, { onError: (err) => errors.push(err), template });
    await db.exec('CREATE TABLE t (v int)');
    await takeOver();
    await eventually(async () => errors.length > 0, 10_000, 'the lost lock reported');
    expect(errors[0]).toBeInstanceOf(DataDirLostError);
    await expect(db.query('INSERT INTO t VALUES (1)')).rejects.toBeInstanceOf(DatabaseUnavailableError);
    // The owner file may be the new holder's by now: left alone.
    await db.close();
    expect(await fs.readFile(path.join(dir, 'document-store.owner.json'), 'utf8')).toContain(String(process.pid));
  });

  test('a sync that fails (a failing disk) stops the service at once with a fatal line, rather than leave it frozen; the next start has every answered document', async () => {
    await (await createPgliteDb(dir, { template })).close();
    const failWhen = path.join(path.dirname(dir), 'fail-fsync-now');
    const env = {
      PGLITE_DATA_DIR: dir,
      UPLOAD_DIR: path.join(path.dirname(dir), 'uploads'),
      NODE_OPTIONS: `--require ${path.join(__dirname, '../helpers/fail-fsync.cjs')}`,
      FAIL_FSYNC_WHEN: failWhen,
    };
    const service = await startServerProcess(env);
    let answered: number;
    try {
      const created = await fetch(`${service.url}/api/customers`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"name":"Kept GmbH"}' });
      answered = ((await created.json()) as { id: number }).id;
      await fs.writeFile(failWhen, '');
      // The next commit's sync fails: that request is never answered, the process exits.
      const failed = await fetch(`${service.url}/api/customers`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"name":"Lost AG"}' }).then(
        (res) => res.status,
        () => 'connection closed',
      );
      expect(failed).toBe('connection closed');
      expect(await service.exited).toEqual({ code: 1, signal: null });
      expect(service.logs.map((line) => JSON.parse(line)).find((line) => line.level === 60)).toMatchObject({ err: { code: 'DATABASE_SYNC_FAILED' } });
    } finally {
      service.kill('SIGKILL');
    }
    await fs.rm(failWhen);
    const restarted = await startServerProcess(env);
    try {
      const res = await fetch(`${restarted.url}/api/customers/${answered}`);
      expect(res.status).toBe(200);
    } finally {
      restarted.kill('SIGTERM');
      await restarted.exited;
    }
  }, PROCESS_TEST_MS);

  test('the service exits 1 when the lock on its data directory is taken over, so that the platform restarts it', async () => {
    await (await createPgliteDb(dir, { template })).close();
    const service = await startServerProcess({ PGLITE_DATA_DIR: dir, UPLOAD_DIR: path.join(path.dirname(dir), 'uploads') });
    try {
      await takeOver();
      expect(await service.exited).toEqual({ code: 1, signal: null });
      expect(service.logs.some((line) => line.includes('DATABASE_LOST') || line.includes('lost its lock'))).toBe(true);
    } finally {
      service.kill('SIGKILL');
    }
  }, PROCESS_TEST_MS);
});
