import pg from 'pg';
import type { Db } from '../../src/db';
import { enqueueFileDeletions, FileDeletions } from '../../src/documents/deletions';
import { S3Sync } from '../../src/documents/sync';
import { logger, startTestApp, type TestApp } from '../helpers/app';
import { files } from '../helpers/files';
import { sha256 } from '../helpers/streams';
import { eventually } from '../helpers/wait';

// A lock held in PGlite's one process cannot be lost with a connection; on Postgres it can (CI runs this suite there).
const onPostgres = process.env.DATABASE_URL ? describe : describe.skip;

/**
 * MOVE_LOCK goes with its database connection (a failover, idle_session_timeout, an administrator), and the mover
 * learns of it only when it next looks. Meanwhile another instance takes the lock, and its deletion queue removes
 * a leftover S3 copy of the very document being moved: the mover then switched its row onto the removed key and
 * removed the local file, and the document was gone from both stores.
 */
onPostgres('a mover that lost MOVE_LOCK without knowing it', () => {
  let t: TestApp;
  let admin: pg.Client;
  beforeAll(async () => {
    t = await startTestApp({ storage: 's3' });
    admin = new pg.Client({ connectionString: t.database.url });
    await admin.connect();
  });
  afterAll(async () => {
    await admin?.end();
    await t?.close();
  });

  /** A document kept on local disk during an S3 outage, with the queue entry an earlier move of it left behind. */
  const pendingWithLeftover = async (content: Buffer) => {
    const customerId: number = (await t.request().post('/api/customers').send({ name: 'Lock KG' })).body.id;
    await t.s3!.down();
    const uploaded = await t.request().post(`/api/customers/${customerId}/documents`).attach('file', content, 'kept.pdf');
    await t.s3!.up();
    expect(uploaded.body.pendingStorage).toBe('s3');
    const id: number = uploaded.body.id;
    const key = `customer-documents/${customerId}/${uploaded.body.storedFileName}`;
    // An earlier move's check failed, and so did the removal of its copy: the entry stays queued.
    await enqueueFileDeletions(t.database.db, [{ storage: 's3', key, storedFileName: uploaded.body.storedFileName, documentId: id }]);
    return { customerId, id, key };
  };
  const syncOn = (db: Db) => new S3Sync({ db, storage: t.storage, config: t.config, logger, deletions: new FileDeletions({ db: t.database.db, storage: t.storage, logger }) });
  /** Another instance's deletion queue, on connections of its own. */
  const otherInstanceRunsQueue = async () => {
    const other = await t.database.openAgain();
    try {
      return await new FileDeletions({ db: other, storage: t.storage, logger }).runDue();
    } finally {
      await other.close();
    }
  };
  // This test's database only: another test file's advisory locks (a migration's, on the same server) are not ours.
  const dropLockConnection = () =>
    admin.query(
      `SELECT pg_terminate_backend(pid) FROM pg_locks
        WHERE locktype = 'advisory' AND pid <> pg_backend_pid() AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    );
  const gate = () => {
    let open!: () => void;
    const opened = new Promise<void>((resolve) => (open = resolve));
    let arrive!: () => void;
    const arrived = new Promise<void>((resolve) => (arrive = resolve));
    return { open, opened, arrive, arrived };
  };

  test('invariant: a leftover copy removed under the lost lock before the switch is not switched onto; the document stays on local disk', async () => {
    const content = files.pdf(50_000);
    const { customerId, id, key } = await pendingWithLeftover(content);
    // This instance's sync copies and checks the document, then is held before its switch: the moment its lock goes.
    const db = t.database.db;
    const atSwitch = gate();
    const run = syncOn({
      ...db,
      transaction: async (fn) => {
        atSwitch.arrive();
        await atSwitch.opened;
        return db.transaction(fn);
      },
    }).run();
    await atSwitch.arrived;
    try {
      await dropLockConnection();
      expect(await otherInstanceRunsQueue()).toMatchObject({ removed: 1 });
    } finally {
      atSwitch.open();
    }
    expect(await run).toEqual({ moved: 0, failed: 1 });

    const [row] = await db.query('SELECT storage, pending_storage FROM customer_documents WHERE id = $1', [id]);
    expect(row).toEqual({ storage: 'local', pending_storage: 's3' });
    const download = await t.request().get(`/api/customers/${customerId}/documents/${id}/download`).buffer(true);
    expect(download.status).toBe(200);
    expect(sha256(download.body)).toBe(sha256(content));

    // The next pass, under a lock of its own, moves it for good.
    expect(await syncOn(db).run()).toEqual({ moved: 1, failed: 0 });
    const moved = await t.request().get(`/api/customers/${customerId}/documents/${id}/download`).buffer(true);
    expect(sha256(moved.body)).toBe(sha256(content));
    expect(await t.storedFiles()).toEqual([`s3:${key}`]);
  });

  test('invariant: a removal of the leftover copy while the switch is committing waits for it, and keeps the copy the row now names', async () => {
    const content = files.pdf(40_000);
    const { customerId, id, key } = await pendingWithLeftover(content);
    // The switch has changed the row and found its copy, and is held before it commits; its lock goes meanwhile.
    const db = t.database.db;
    const beforeCommit = gate();
    const run = syncOn({
      ...db,
      transaction: (fn) =>
        db.transaction(async (tx) => {
          const result = await fn(tx);
          beforeCommit.arrive();
          await beforeCommit.opened;
          return result;
        }),
    }).run();
    await beforeCommit.arrived;
    await dropLockConnection();
    const removal = otherInstanceRunsQueue();
    try {
      // The other instance waits for the row the switch holds.
      await eventually(async () => {
        const waiting = await admin.query(
          "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%FOR SHARE%'",
        );
        return waiting.rows.length > 0;
      }, 5_000, 'the removal waiting for the row');
    } finally {
      beforeCommit.open();
    }
    expect(await run).toEqual({ moved: 1, failed: 0 });
    expect(await removal).toMatchObject({ removed: 1 }); // dequeued; the object stays, named by the row
    const download = await t.request().get(`/api/customers/${customerId}/documents/${id}/download`).buffer(true);
    expect(download.status).toBe(200);
    expect(sha256(download.body)).toBe(sha256(content));
    expect((await t.storedFiles()).filter((f) => f.endsWith(key))).toEqual([`s3:${key}`]);
  });
});
