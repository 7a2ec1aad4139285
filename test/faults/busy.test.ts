import http from 'node:http';
import { migrate } from '../../src/db/migrate';
import { createLogger } from '../../src/logger';
import { startTestApp, type TestApp } from '../helpers/app';
import { createTestDb } from '../helpers/db';
import { files } from '../helpers/files';
import { logLines } from '../helpers/logs';
import { metric } from '../helpers/metrics';
import { asSha256, sha256 } from '../helpers/streams';
import { streamUpload } from '../helpers/upload';
import { eventually } from '../helpers/wait';

const MB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Whether `promise` has settled by now. */
function tracked<T>(promise: Promise<T>): { promise: Promise<T>; settled: () => boolean } {
  let done = false;
  void promise.finally(() => (done = true)).catch(() => undefined);
  return { promise, settled: () => done };
}

// The memory and connections themselves are measured by the benchmark's concurrency case (npm run bench); these
// tests check the mechanism: work beyond the room waits, then is refused as busy, never as an outage.
describe('busy: S3 uploads beyond S3_UPLOAD_MEMORY', () => {
  let t: TestApp;
  let port: number;
  let customerId: number;
  const { lines, sink } = logLines();
  const logged = (): Array<{ level: number; msg: string; code?: string; reason?: string; err?: unknown; res?: { statusCode: number } }> =>
    lines.map((l) => JSON.parse(l));

  beforeAll(async () => {
    // 5 MiB of part buffers: one upload of unknown size takes all of it.
    t = await startTestApp({
      storage: 's3',
      // QUEUE_TIMEOUT well past what the test looks at meanwhile (metrics, each a request), on a loaded machine too.
      env: { S3_UPLOAD_MEMORY: '5mb', QUEUE_TIMEOUT: '4s', MAX_UPLOAD_SIZE: '100mb', S3_TIMEOUT: '20s' },
      logger: createLogger('info', sink),
    });
    port = await t.listen();
    customerId = (await t.request().post('/api/customers').send({ name: 'Rush Hour Ltd' })).body.id;
  });
  afterAll(async () => {
    await t.close();
  });

  test('an upload finding no room waits unread, and is refused with 503 STORAGE_BUSY after QUEUE_TIMEOUT; nothing of it is kept', async () => {
    const big = streamUpload({ port, path: `/api/customers/${customerId}/documents`, size: 20 * MB });
    await big.reached(1 * MB);
    big.pause();

    const started = Date.now();
    const refused = t.request().post(`/api/customers/${customerId}/documents`).attach('file', files.pdf(2_000), 'small.pdf').then((res) => res);
    // Ops see the room full and the line, before any refusal.
    const gate = (name: string) => `admission_${name}{gate="s3_upload_bytes"}`;
    await eventually(async () => (await metric(t, gate('waiting'))) === 1, 3_000, 'the small upload waiting in line');
    expect(await metric(t, gate('in_use'))).toBe(5 * MB);
    expect(await metric(t, gate('capacity'))).toBe(5 * MB);
    expect(await metric(t, gate('refused_total'))).toBe(0);
    const small = await refused;
    expect(small.status).toBe(503);
    expect(small.body.error).toEqual({ code: 'STORAGE_BUSY', message: 'Too many uploads are under way; try again shortly' });
    expect(small.headers['retry-after']).toBe('5');
    expect(Date.now() - started).toBeGreaterThanOrEqual(3_900);
    expect(await metric(t, gate('refused_total'))).toBe(1);
    expect(await metric(t, gate('waiting'))).toBe(0);
    // A crowd, not a fault: one warning that says what was full, no error with a stack.
    expect(logged().filter((l) => l.code === 'STORAGE_BUSY')).toEqual([
      expect.objectContaining({ level: 40, msg: 'Too many uploads are under way; try again shortly', reason: 'waited 4000 ms for room' }),
    ]);
    expect(logged().filter((l) => l.level >= 50)).toEqual([]);
    // The request's own line says 503, without a made-up error and its stack.
    const line = logged().find((l) => l.res?.statusCode === 503);
    expect(line).toMatchObject({ level: 30, msg: 'request errored' });
    expect(line?.err).toBeUndefined();

    big.resume();
    const res = await big.response;
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ storage: 's3', sha256: big.sha256 });
    const listed = await t.request().get(`/api/customers/${customerId}/documents`);
    expect(listed.body.documents.map((d: { fileName: string }) => d.fileName)).toEqual(['upload.pdf']);
    expect((await t.storedFiles()).filter((key) => !key.endsWith(res.body.storedFileName))).toEqual([]);
  }, 60_000);

  test('an upload that waits goes on as soon as room is freed, and its bytes arrive whole', async () => {
    // Sent chunked, of unknown size: it takes all the room, though only 2 MB.
    const big = streamUpload({ port, path: `/api/customers/${customerId}/documents`, size: 2 * MB, fileName: 'first.pdf' });
    await big.reached(1 * MB);
    big.pause();
    const second = streamUpload({ port, path: `/api/customers/${customerId}/documents`, size: 30 * MB, fileName: 'second.pdf' });
    const answered = tracked(second.response);
    await sleep(500);
    // Waiting, unread: what the client could send is what socket buffers hold (a few MB), not its 30 MB.
    expect(answered.settled()).toBe(false);
    expect(second.sent()).toBeLessThan(10 * MB);

    big.resume();
    const [first, next] = await Promise.all([big.response, second.response]);
    expect([first.status, next.status]).toEqual([201, 201]);
    expect(next.body).toMatchObject({ storage: 's3', sha256: second.sha256 });
  }, 60_000);
});

describe('busy: S3 downloads beyond S3_MAX_SOCKETS', () => {
  let t: TestApp;
  let port: number;
  let customerId: number;
  const content = files.pdf(64 * MB);
  let location: string;
  const gets = (outcome: string) => `storage_operation_duration_seconds_count{storage="s3",operation="get",outcome="${outcome}"}`;
  /** A download of the big document whose client does not read: its S3 connection, the only one, stays taken. */
  const holdDownload = () =>
    new Promise<http.IncomingMessage>((resolve) => {
      http.get({ port, host: '127.0.0.1', path: `${location}/download`, agent: false }, (res) => {
        res.pause();
        resolve(res);
      });
    });

  beforeAll(async () => {
    // One connection for downloads: one client that does not read holds them all.
    t = await startTestApp({ storage: 's3', env: { S3_MAX_SOCKETS: '1', QUEUE_TIMEOUT: '4s', MAX_UPLOAD_SIZE: '100mb', S3_TIMEOUT: '10s' } });
    port = await t.listen();
    customerId = (await t.request().post('/api/customers').send({ name: 'Slow Readers plc' })).body.id;
    const doc = await t.request().post(`/api/customers/${customerId}/documents`).attach('file', content, 'big.pdf');
    expect(doc.status).toBe(201);
    location = doc.headers.location;
  }, 60_000);
  afterAll(async () => {
    await t.close();
  });

  test('a download finding every S3 connection held by slow clients waits, then is refused as busy, not as S3 down', async () => {
    // A HEAD of a range the store over-sends (s3rver reads bytes=0-0 as bytes=0-) gives its connection back too.
    for (let i = 0; i < 3; i++) {
      expect((await t.request().head(`${location}/download`).set('Range', 'bytes=0-0')).status).toBe(206);
    }
    const held = await holdDownload();

    expect(await metric(t, 'admission_in_use{gate="s3_download_sockets"}')).toBe(1);
    const refused = await t.request().get(`${location}/download`);
    expect(refused.status).toBe(503);
    expect(await metric(t, 'admission_refused_total{gate="s3_download_sockets"}')).toBe(1);
    // Refused here, never sent: not counted as S3 failing, nor as an answer of S3's.
    expect(await metric(t, gets('busy'))).toBe(1);
    expect(await metric(t, 'storage_operation_errors_total{storage="s3",operation="get"}')).toBeUndefined();
    expect(refused.body.error).toEqual({ code: 'STORAGE_BUSY', message: 'Too many downloads are under way; try again shortly' });
    expect(refused.headers['retry-after']).toBe('5');
    // S3 itself answers: uploads (another pool) still go to it meanwhile.
    const small = await t.request().post(`/api/customers/${customerId}/documents`).attach('file', files.pdf(10_000), 'small.pdf');
    expect([small.status, small.body.storage]).toEqual([201, 's3']);

    // A download that waits gets the connection once the slow one is done.
    const waiting = t.request().get(`${location}/download`).buffer(true).parse(asSha256);
    await sleep(300);
    held.destroy();
    const served = await waiting;
    expect(served.status).toBe(200);
    expect(served.body).toBe(sha256(content));
  }, 60_000);

  test('a download whose client leaves while it waits for a connection gives up its place at once', async () => {
    const held = await holdDownload();
    const waiting = 'admission_waiting{gate="s3_download_sockets"}';
    const leaving = http.get({ port, host: '127.0.0.1', path: `${location}/download`, agent: false });
    leaving.on('error', () => undefined);
    await eventually(async () => (await metric(t, waiting)) === 1, 3_000, 'the second download waiting in line');
    const left = Date.now();
    leaving.destroy();
    await eventually(async () => (await metric(t, waiting)) === 0, 3_000, 'the line empty again');
    // Well before QUEUE_TIMEOUT (4 s), which is when a waiter left behind would go.
    expect(Date.now() - left).toBeLessThan(2_000);
    held.destroy();
    await eventually(async () => (await metric(t, 'admission_in_use{gate="s3_download_sockets"}')) === 0, 2_000, 'the connection free');
    // It was not refused, and took no connection: the next download is served at once.
    expect(await metric(t, 'admission_refused_total{gate="s3_download_sockets"}')).toBe(1);
    expect(await metric(t, gets('cancelled'))).toBe(1);
    expect(await metric(t, gets('busy'))).toBe(1);
    expect((await t.request().head(`${location}/download`)).status).toBe(200);
  }, 30_000);

  test('a download whose client leaves while its S3 request is in flight gives its connection back at once', async () => {
    // S3 takes the request and does not answer (S3_TIMEOUT is 10 s here).
    t.s3!.proxy.stall();
    try {
      const leaving = http.get({ port, host: '127.0.0.1', path: `${location}/download`, agent: false });
      leaving.on('error', () => undefined);
      await eventually(async () => (await metric(t, 'admission_in_use{gate="s3_download_sockets"}')) === 1, 2_000, 'the GetObject in flight');
      const cancelled = (await metric(t, gets('cancelled'))) ?? 0;
      const left = Date.now();
      leaving.destroy();
      await eventually(async () => (await metric(t, 'admission_in_use{gate="s3_download_sockets"}')) === 0, 3_000, 'the connection given back');
      // Not when S3_TIMEOUT (10 s) gives up on the request, which is when it would go without the client's signal.
      expect(Date.now() - left).toBeLessThan(5_000);
      expect(await metric(t, gets('cancelled'))).toBe(cancelled + 1);
      expect(await metric(t, 'storage_operation_errors_total{storage="s3",operation="get"}')).toBeUndefined();
    } finally {
      t.s3!.proxy.unstall();
    }
    // The connection pool is whole: the next download is served in full.
    const served = await t.request().get(`${location}/download`).buffer(true).parse(asSha256);
    expect([served.status, served.body]).toEqual([200, sha256(content)]);
  }, 30_000);

  test('a download whose client left while its document was looked up never waits for a connection', async () => {
    const held = await holdDownload();
    // Read before the table is held: /metrics reads the database too.
    const cancelled = (await metric(t, gets('cancelled'))) ?? 0;
    const refused = await metric(t, 'admission_refused_total{gate="s3_download_sockets"}');
    // The lookup waits for the table, held by another transaction, while the client leaves.
    let unlock!: () => void;
    let locked!: () => void;
    const isLocked = new Promise<void>((resolve) => (locked = resolve));
    const holder = t.database.db.transaction(async (tx) => {
      await tx.query('LOCK TABLE customer_documents IN ACCESS EXCLUSIVE MODE');
      locked();
      await new Promise<void>((resolve) => (unlock = resolve));
    });
    await isLocked;
    try {
      const leaving = http.get({ port, host: '127.0.0.1', path: `${location}/download`, agent: false });
      leaving.on('error', () => undefined);
      await sleep(300);
      leaving.destroy();
      await sleep(100);
    } finally {
      unlock();
      await holder;
    }
    // Given up as soon as the lookup is done: not a place in line until QUEUE_TIMEOUT (4 s), then a refusal.
    await eventually(async () => (await metric(t, gets('cancelled'))) === cancelled + 1, 3_000, 'the download given up');
    expect(await metric(t, 'admission_refused_total{gate="s3_download_sockets"}')).toBe(refused);
    held.destroy();
    await eventually(async () => (await metric(t, 'admission_in_use{gate="s3_download_sockets"}')) === 0, 2_000, 'the connection free');
  }, 30_000);

  test('the background sync stops its pass at the first document, for the next pass, rather than fail each one after QUEUE_TIMEOUT', async () => {
    // Two uploads during an S3 outage, kept on local disk to be moved.
    await t.s3!.down();
    for (const name of ['a.pdf', 'b.pdf']) {
      const kept = await t.request().post(`/api/customers/${customerId}/documents`).attach('file', files.pdf(10_000), name);
      expect(kept.body).toMatchObject({ storage: 'local', pendingStorage: 's3' });
    }
    await t.s3!.up();
    const held = await holdDownload();
    // The copy's read-back waits for a download connection: the pass stops there, with both still waiting.
    expect(await t.services.sync.run()).toEqual({ moved: 0, failed: 1 });
    held.destroy();
    await eventually(async () => (await t.services.sync.run()).moved === 2, 10_000, 'both moved once a connection is free');
  }, 60_000);
});

/**
 * A database whose every connection the test can keep busy for `ms`, as a burst of long listings would: Postgres with
 * a pool of two, or PGlite, which runs one statement or transaction at a time.
 */
async function crowdableDb(kind: 'postgres' | 'pglite') {
  const database = await createTestDb({ max: 2, queueTimeoutMs: 2_000 });
  const { db } = database;
  const busy = (ms: number) =>
    kind === 'pglite' ? [db.transaction(() => sleep(ms))] : [db.query(`SELECT pg_sleep(${ms / 1000})`), db.query(`SELECT pg_sleep(${ms / 1000})`)];
  return { database, capacity: kind === 'pglite' ? 1 : 2, busy };
}

// Each pass runs on its own database: PGlite in the default one, Postgres with DATABASE_URL.
const kind = process.env.DATABASE_URL ? 'postgres' : 'pglite';

describe(`busy: every database connection taken (${kind})`, () => {
  test('a request waits for a connection, then is refused as DATABASE_BUSY; once one is free, it is served', async () => {
    const { database, capacity, busy } = await crowdableDb(kind);
    await migrate(database.db);
    const { lines, sink } = logLines();
    const t = await startTestApp({ storage: 'local', database, logger: createLogger('info', sink) });
    try {
      const customerId = (await t.request().post('/api/customers').send({ name: 'Crowded Pool GmbH' })).body.id;
      // Every connection busy for 3 s.
      const long = busy(3_000);
      await sleep(100);
      const listing = await t.request().get(`/api/customers/${customerId}/documents`);
      expect(listing.status).toBe(503);
      expect(listing.body.error).toEqual({ code: 'DATABASE_BUSY', message: 'The service is busy; try again shortly' });
      expect(listing.headers['retry-after']).toBe('5');
      expect(database.db.gates?.database_connections).toMatchObject({ capacity, inUse: capacity, refused: 1 });
      // A crowd, not an outage: one warning that says what was full, and nothing at error level.
      const logged = lines.map((l) => JSON.parse(l) as { level: number; code?: string; reason?: string });
      expect(logged.filter((l) => l.code === 'DATABASE_BUSY')).toEqual([expect.objectContaining({ level: 40, reason: expect.stringMatching(/^waited 2000 ms/) })]);
      expect(logged.filter((l) => l.level >= 50)).toEqual([]);
      if (kind === 'postgres') {
        // The database answers: a platform must not restart the service, nor a load balancer take it out.
        // (PGlite's own check waits for the statement under way, like every other.)
        const health = await t.request().get('/health');
        expect([health.status, health.body.status]).toEqual([200, 'ok']);
      }

      await Promise.all(long);

      // A request that waits less than QUEUE_TIMEOUT gets a connection as one is freed.
      const short = busy(1_000);
      await sleep(100);
      const waiting = tracked(t.request().get(`/api/customers/${customerId}/documents`).then((res) => res));
      await sleep(500);
      expect(waiting.settled()).toBe(false);
      await Promise.all(short);
      expect((await waiting.promise).status).toBe(200);
    } finally {
      await t.close();
      await database.close();
    }
  }, 30_000);

  test('the background sync stops its pass when the database is busy mid-move, with a warning, for the next pass', async () => {
    const { database, busy } = await crowdableDb(kind);
    const { lines, sink } = logLines();
    const t = await startTestApp({ storage: 's3', database, env: { S3_TIMEOUT: '10s' }, logger: createLogger('info', sink) });
    try {
      const customerId = (await t.request().post('/api/customers').send({ name: 'Busy Mover Ltd' })).body.id;
      await t.s3!.down();
      const kept = await t.request().post(`/api/customers/${customerId}/documents`).attach('file', files.pdf(10_000), 'kept.pdf');
      expect(kept.body).toMatchObject({ storage: 'local', pendingStorage: 's3' });
      await t.s3!.up();

      // The copy to S3 held up, and meanwhile every database connection taken: the switch after it must wait.
      // (S3 went down and up: no connection to it is left open, so the copy opens one once past its reads.)
      const proxy = t.s3!.proxy;
      const connected = proxy.accepted;
      proxy.stall();
      const pass = t.services.sync.run();
      await eventually(() => proxy.accepted > connected, 5_000, 'the copy to S3 under way');
      const long = busy(4_000);
      await sleep(100);
      t.s3!.proxy.unstall();
      expect(await pass).toEqual({ moved: 0, failed: 1 });
      const logged = lines.map((l) => JSON.parse(l) as { level: number; msg: string });
      expect(logged.filter((l) => l.msg.startsWith('the database is busy'))).toEqual([expect.objectContaining({ level: 40 })]);
      expect(logged.filter((l) => l.level >= 50)).toEqual([]);

      // On Postgres the sync's lock holds one of the two connections, so one of the test's waits is refused too.
      await Promise.allSettled(long);
      // Refused at the switch, after the copy: in the bucket, the row still local.
      expect((await t.storedFiles()).filter((f) => f.startsWith('s3:'))).toHaveLength(1);
      const listed = await t.request().get(`/api/customers/${customerId}/documents`);
      expect(listed.body.documents).toEqual([expect.objectContaining({ storage: 'local', pendingStorage: 's3' })]);
      expect(await t.services.sync.run()).toEqual({ moved: 1, failed: 0 });
    } finally {
      await t.close();
      await database.close();
    }
  }, 30_000);
});
