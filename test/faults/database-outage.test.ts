import pg from 'pg';
import { migrate } from '../../src/db/migrate';
import { createPgDb } from '../../src/db/pg';
import { startTestApp, type TestApp } from '../helpers/app';
import { createTestDb, type TestDb } from '../helpers/db';
import { files } from '../helpers/files';
import { startProxy, type TestProxy } from '../helpers/proxy';
import { sha256 } from '../helpers/streams';
import { streamUpload } from '../helpers/upload';
import { eventually } from '../helpers/wait';

const MB = 1024 * 1024;

// The embedded PGlite lives inside the process and cannot become unreachable; the database's own outages are
// caused for real against Postgres, which CI runs this suite on (DATABASE_URL).
const onPostgres = process.env.DATABASE_URL ? describe : describe.skip;

onPostgres('database outages (Postgres behind a proxy that goes down)', () => {
  let database: TestDb;
  let proxy: TestProxy;
  let t: TestApp;
  let port: number;
  let customerId: number;
  /** The database through the proxy, as an app of the test's sees it. */
  let proxied: () => TestDb;

  beforeAll(async () => {
    database = await createTestDb();
    await migrate(database.db);
    const url = new URL(database.url!);
    proxy = await startProxy(Number(url.port || 5432), url.hostname);
    url.port = String(proxy.port);
    proxied = () => {
      const db = createPgDb(url.toString());
      return { db, kind: 'postgres', openAgain: async () => db, close: () => db.close() };
    };
    t = await startTestApp({ storage: 'local', database: proxied() });
    port = await t.listen();
    customerId = (await t.request().post('/api/customers').send({ name: 'Offline KG' })).body.id;
  });
  afterAll(async () => {
    await proxy.up();
    await t.close();
    await t.database.close();
    await proxy.close();
    await database.close();
  });

  /**
   * An upload to `app` whose INSERT goes out and is never answered: the proxy in front of the database holds what the
   * app sends once the file is being stored (2 MB in, its customer lookup long answered), and goes down once the
   * INSERT is among it. Requests run one at a time here, so the pool holds an idle connection, which the INSERT goes
   * out on: its outcome is unknown. The upload's answer.
   */
  const uploadWithUnansweredInsert = async (app: TestApp, appPort: number, customer: number) => {
    const upload = streamUpload({ port: appPort, path: `/api/customers/${customer}/documents`, size: 4 * MB, chunkSize: 128 * 1024 });
    await upload.reached(2 * MB);
    upload.pause();
    await eventually(async () => (await app.storedFiles({ localOnly: true })).some((f) => f.startsWith('.tmp/')), 5_000, 'upload being stored');
    proxy.hold();
    upload.resume();
    await eventually(async () => proxy.held().includes('INSERT INTO customer_documents'), 10_000, 'the INSERT sent');
    await proxy.down();
    return upload.response;
  };

  test('a connection the server ends as the pool hands it out (an administrator, a failover) is a 503, not a crash', async () => {
    // Postgres's FATAL for pg_terminate_backend, sent in the same packet as the ReadyForQuery that completes a new
    // connection: pg emits it before whoever asked for the connection has had a turn to listen for errors.
    const fatal = pgMessage('E', ['SFATAL', 'VFATAL', 'C57P01', 'Mterminating connection due to administrator command']);
    const readyForQuery = Buffer.from([0x5a, 0, 0, 0, 5, 0x49]);
    let ended = 0;
    proxy.tamper((chunk) => {
      if (!chunk.subarray(-readyForQuery.length).equals(readyForQuery)) return chunk;
      ended++;
      return Buffer.concat([chunk, fatal]);
    });
    try {
      // New connections only: every pooled one is dropped first.
      await proxy.down();
      await proxy.up();
      const res = await t.request().get(`/api/customers/${customerId}/documents`);
      expect(ended).toBeGreaterThan(0);
      expect([res.status, res.body.error.code]).toEqual([503, 'DATABASE_UNAVAILABLE']);
    } finally {
      proxy.tamper();
    }
    // The process is still here, and the pool makes a good connection for the next request.
    await eventually(async () => (await t.request().get(`/api/customers/${customerId}/documents`)).status === 200);
  });

  test('a lock whose connection ends while the lock session is being set up is known to be lost', async () => {
    // Postgres's answer to a SET (CommandComplete "SET"), followed in the same packet by the FATAL of a terminated
    // backend: the connection ends right after the lock was taken, before its holder starts.
    const setDone = Buffer.from([0x43, 0, 0, 0, 8, ...Buffer.from('SET\0')]);
    const fatal = pgMessage('E', ['SFATAL', 'VFATAL', 'C57P01', 'Mterminating connection due to administrator command']);
    let ended = false;
    proxy.tamper((chunk) => {
      if (ended || !chunk.includes(setDone)) return chunk;
      ended = true;
      return Buffer.concat([chunk, fatal]);
    });
    try {
      const lost = await t.database.db.withLock('test-lock-set-up', async (_session, signal) => {
        await eventually(() => signal.aborted, 2_000).catch(() => undefined);
        return signal.aborted;
      });
      expect(ended).toBe(true);
      expect(lost).toBe(true);
    } finally {
      proxy.tamper();
    }
  });

  test('invariant: with the database down every route answers 503 JSON quickly, and the service recovers by itself once it is back', async () => {
    await proxy.down();
    const started = Date.now();
    const list = await t.request().get(`/api/customers/${customerId}/documents`);
    expect(list.status).toBe(503);
    expect(list.body.error.code).toBe('DATABASE_UNAVAILABLE');
    expect(list.headers['retry-after']).toBe('5');
    const create = await t.request().post('/api/customers').send({ name: 'Nope' });
    expect(create.status).toBe(503);
    expect((await t.request().get('/health')).status).toBe(503);
    expect(Date.now() - started).toBeLessThan(10_000);

    await proxy.up();
    expect((await t.request().get(`/api/customers/${customerId}/documents`)).status).toBe(200);
    expect((await t.request().get('/health')).status).toBe(200);
  });

  test('invariant: an upload whose row cannot be written (the database went down midway) is a 503 and its stored file is removed', async () => {
    const before = await t.storedFiles();
    const upload = streamUpload({ port, path: `/api/customers/${customerId}/documents`, size: 4 * MB });
    await upload.reached(2 * MB);
    await proxy.down();
    const res = await upload.response;
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('DATABASE_UNAVAILABLE');
    expect(await t.storedFiles()).toEqual(before);
    await proxy.up();
    expect((await t.request().get(`/api/customers/${customerId}/documents`)).body.documents).toEqual([]);
  });

  test('invariant: an upload whose INSERT was sent but never answered keeps its file until the database, back, shows no row names it', async () => {
    const before = await t.storedFiles();
    const res = await uploadWithUnansweredInsert(t, port, customerId);
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('DATABASE_UNAVAILABLE');
    // Not removed yet: had the INSERT committed, removing the file would leave a row without it.
    expect((await t.storedFiles()).length).toBe(before.length + 1);
    expect(await t.services.documents.settleUnconfirmed()).toEqual({ kept: 0, removed: 0 }); // still down: waits
    await proxy.up();
    expect(await t.services.documents.settleUnconfirmed()).toEqual({ kept: 0, removed: 1 });
    expect(await t.storedFiles()).toEqual(before);
  });

  test('invariant: an upload kept on disk during an S3 outage whose INSERT was never answered: once no row names it, its file goes, and the key S3 may hold is queued', async () => {
    const cloudy = await startTestApp({ storage: 's3', database: proxied() });
    try {
      const cloudyPort = await cloudy.listen();
      const id = (await cloudy.request().post('/api/customers').send({ name: 'Stormy AG' })).body.id as number;
      await cloudy.s3!.down();
      expect((await uploadWithUnansweredInsert(cloudy, cloudyPort, id)).status).toBe(503);
      expect(await cloudy.storedFiles({ localOnly: true })).toHaveLength(1); // kept until the database tells
      await proxy.up();
      expect(await cloudy.services.documents.settleUnconfirmed()).toEqual({ kept: 0, removed: 1 });
      expect(await cloudy.storedFiles({ localOnly: true })).toEqual([]);
      const queued = await database.db.query<{ storage: string; key: string }>('SELECT storage, storage_key AS key FROM document_file_deletions');
      expect(queued).toEqual([{ storage: 's3', key: expect.stringMatching(new RegExp(`^customer-documents/${id}/[^/]+$`)) }]);
      await cloudy.s3!.up();
      expect(await cloudy.services.deletions.runDue()).toEqual({ removed: 1, failed: 0 });
    } finally {
      await cloudy.s3!.up();
      await cloudy.close();
      await cloudy.database.close();
    }
  });

  test('invariant: an INSERT still running in Postgres after its connection broke is waited for before its file is judged', async () => {
    // Another session (the CRM, a migration) holds a lock the upload's INSERT waits for, inside Postgres.
    const blocker = new pg.Client({ connectionString: database.url });
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE customer_documents IN SHARE MODE');
      const content = files.pdf(50_000);
      const upload = t.request().post(`/api/customers/${customerId}/documents`).attach('file', content, 'late.pdf').then((r) => r);
      await eventually(async () => {
        // Not on the blocker's connection: inside its transaction, pg_stat_activity is one snapshot.
        const waiting = await database.db.query(
          "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO customer_documents%'",
        );
        return waiting.length > 0;
      }, 5_000, 'the INSERT waiting for its lock');
      await proxy.down(); // its connection breaks; the statement goes on waiting in Postgres
      expect((await upload).status).toBe(503);
      await proxy.up();
      // The INSERT still holds on: nothing is judged yet.
      expect(await t.services.documents.settleUnconfirmed()).toEqual({ kept: 0, removed: 0 });
      await blocker.query('COMMIT'); // the INSERT runs, and commits
      await eventually(async () => (await t.services.documents.settleUnconfirmed()).kept === 1, 5_000, 'settled');
      const [row] = (await t.request().get(`/api/customers/${customerId}/documents`)).body.documents.filter((d: { fileName: string }) => d.fileName === 'late.pdf');
      const download = await t.request().get(`/api/customers/${customerId}/documents/${row.id}/download`).buffer(true);
      expect(download.status).toBe(200);
      expect(sha256(download.body)).toBe(sha256(content));
      await t.request().delete(`/api/customers/${customerId}/documents/${row.id}`).expect(204);
    } finally {
      await blocker.end();
    }
  });

  test('invariant: a delete while the database is down changes nothing: the document and its file stay whole', async () => {
    const content = files.pdf(50_000);
    const doc = await t.request().post(`/api/customers/${customerId}/documents`).attach('file', content, 'keep.pdf');
    expect(doc.status).toBe(201);
    await proxy.down();
    expect((await t.request().delete(doc.headers.location)).status).toBe(503);
    await proxy.up();
    const download = await t.request().get(`${doc.headers.location}/download`).buffer(true);
    expect(download.status).toBe(200);
    expect(sha256(download.body)).toBe(sha256(content));
  });
});

/** A message of Postgres's protocol: its type, a length, and NUL-terminated fields ending with a NUL. */
function pgMessage(type: string, fields: string[]): Buffer {
  const body = Buffer.from(`${fields.join('\0')}\0\0`);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(body.length + 4);
  return Buffer.concat([Buffer.from(type), length, body]);
}
