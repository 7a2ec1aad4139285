import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import supertest from 'supertest';
import { loadConfig } from '../../src/config';
import { enqueueFileDeletions, FileDeletions } from '../../src/documents/deletions';
import { MOVE_LOCK } from '../../src/documents/locks';
import { startService } from '../../src/server';
import { explain } from '../../src/errors';
import { StorageRefusedError } from '../../src/storage';
import type { Readable } from 'node:stream';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { logger, startTestApp, type TestApp } from '../helpers/app';
import { createTestDb } from '../helpers/db';
import { startS3 } from '../helpers/s3';
import { files } from '../helpers/files';
import { readAll, sha256 } from '../helpers/streams';
import { streamUpload, uploadAcrossCustomerDelete } from '../helpers/upload';
import { eventually } from '../helpers/wait';

const MB = 1024 * 1024;

describe('S3 outages', () => {
  let t: TestApp;
  let port: number;
  let customerId: number;

  beforeEach(async () => {
    t = await startTestApp({ storage: 's3' });
    port = await t.listen();
    customerId = (await t.request().post('/api/customers').send({ name: 'Cloudy GmbH' })).body.id;
  });
  afterEach(async () => {
    await t.s3!.up();
    await t.close();
  });

  const uploadPath = () => `/api/customers/${customerId}/documents`;
  const row = async (id: number) =>
    (await t.database.db.query<{ storage: string; pending_storage: string | null; file_path: string; stored_file_name: string }>(
      'SELECT storage, pending_storage, file_path, stored_file_name FROM customer_documents WHERE id = $1',
      [id],
    ))[0];
  const s3Object = async (key: string) => {
    const res = await t.s3!.client.send(new GetObjectCommand({ Bucket: t.s3!.config.bucket, Key: key }));
    return readAll(res.Body as Readable);
  };
  const queued = () => t.services.deletions.pending();

  test('invariant: an upload during which S3 goes down is accepted (201) on local disk, waits to move, downloads whole; once S3 is back the sync job moves it, checked, and removes the local copy', async () => {
    // Past the first 5 MiB multipart part: S3 has received some of this upload when it goes down.
    const upload = streamUpload({ port, path: uploadPath(), size: 12 * MB, chunkSize: 256 * 1024 });
    await upload.reached(7 * MB);
    await t.s3!.down();
    const res = await upload.response;
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ storage: 'local', pendingStorage: 's3', size: 12 * MB, sha256: upload.sha256 });
    const id = res.body.id as number;
    const local = res.body.storedFileName as string;
    expect(await t.storedFiles({ localOnly: true })).toEqual([local]); // the file, no temporary file left

    const download = await t.request().get(`${uploadPath()}/${id}/download`).buffer(true);
    expect(download.status).toBe(200);
    expect(sha256(download.body)).toBe(upload.sha256);

    // While S3 is down the job leaves it waiting and says so; nothing moves, nothing is lost.
    expect(await t.services.sync.run()).toEqual({ moved: 0, failed: 1 });
    expect(await row(id)).toMatchObject({ storage: 'local', pending_storage: 's3' });

    await t.s3!.up();
    expect(await t.services.sync.run()).toEqual({ moved: 1, failed: 0 });
    const moved = await row(id);
    expect(moved).toMatchObject({ storage: 's3', pending_storage: null, file_path: `customer-documents/${customerId}/${local}` });
    expect(sha256(await s3Object(moved.file_path))).toBe(upload.sha256);
    expect(await t.storedFiles()).toEqual([`s3:${moved.file_path}`]); // the local copy is gone
    expect(await queued()).toBe(0);
    const after = await t.request().get(`${uploadPath()}/${id}/download`).buffer(true);
    expect(sha256(after.body)).toBe(upload.sha256);
    expect((await t.request().get(`${uploadPath()}/${id}`)).body).toMatchObject({ storage: 's3', pendingStorage: null });
    // A second run finds nothing to do.
    expect(await t.services.sync.run()).toEqual({ moved: 0, failed: 0 });
  });

  test('invariant: with S3 down, a download of an S3 document answers 503 JSON quickly, other routes keep working, and a delete is recorded and completed once S3 is back', async () => {
    const content = files.pdf(64 * 1024);
    const stored = await t.request().post(uploadPath()).attach('file', content, 'offer.pdf');
    expect(stored.body.storage).toBe('s3');
    const key = (await row(stored.body.id)).file_path;
    await t.s3!.down();

    const started = Date.now();
    const down = await t.request().get(`${stored.headers.location}/download`);
    expect(down.status).toBe(503);
    expect(down.body.error.code).toBe('STORAGE_UNAVAILABLE');
    expect(down.headers['retry-after']).toBe('5');
    expect(Date.now() - started).toBeLessThan(10_000);
    expect((await t.request().get(uploadPath())).status).toBe(200);
    expect((await t.request().get(stored.headers.location)).status).toBe(200);

    expect((await t.request().delete(stored.headers.location)).status).toBe(204);
    await t.settle();
    expect(await queued()).toBe(1); // the row is gone, its file is queued
    expect((await t.request().get(stored.headers.location)).status).toBe(404);
    expect(await t.services.deletions.runDue()).toEqual({ removed: 0, failed: 1 });

    await t.s3!.up();
    expect(await t.s3!.client.send(new GetObjectCommand({ Bucket: t.s3!.config.bucket, Key: key }))).toBeTruthy();
    expect(await t.services.deletions.runDue()).toEqual({ removed: 1, failed: 0 });
    expect(await queued()).toBe(0);
    expect(await t.storedFiles()).toEqual([]);
  });

  test('invariant: a removal that keeps failing is retried with a growing backoff, and is not tried before it is due', async () => {
    const doc = await t.request().post(uploadPath()).attach('file', files.pdf(), 'stubborn.pdf');
    await t.s3!.down();
    const deletions = new FileDeletions({ db: t.database.db, storage: t.storage, logger }, { retryBaseMs: 60_000 });
    const [queuedId] = await t.database.db.transaction((tx) =>
      enqueueFileDeletions(tx, [{ storage: 's3', key: 'customer-documents/x/y.pdf', storedFileName: 'y.pdf', documentId: doc.body.id }]),
    );
    const due = async () =>
      (await t.database.db.query<{ attempts: number; wait: number }>(
        'SELECT attempts, EXTRACT(EPOCH FROM next_attempt_at - now()) AS wait FROM document_file_deletions WHERE id = $1',
        [queuedId],
      ))[0];
    expect(await deletions.run([queuedId])).toEqual({ removed: 0, failed: 1 });
    const first = await due();
    expect(first.attempts).toBe(1);
    expect(Number(first.wait)).toBeGreaterThan(50); // 60 s
    expect(await deletions.runDue()).toEqual({ removed: 0, failed: 0 }); // not due yet: not tried
    expect(await deletions.run([queuedId])).toEqual({ removed: 0, failed: 1 });
    expect(Number((await due()).wait)).toBeGreaterThan(110); // 120 s: doubled
    await t.s3!.up();
    expect(await deletions.run([queuedId])).toEqual({ removed: 1, failed: 0 });
    expect(await due()).toBeUndefined();
  });

  test('invariant: a hung S3 (connections accepted, never answered) turns into bounded waits: uploads fall back to disk, downloads answer 503', async () => {
    const before = await t.request().post(uploadPath()).attach('file', files.pdf(), 'before.pdf');
    t.s3!.proxy.hang();
    // S3_TIMEOUT 2s × S3_MAX_ATTEMPTS 2 in the tests, plus backoff: well under the 20 s bound.
    let started = Date.now();
    const up = await t.request().post(uploadPath()).attach('file', files.pdf(), 'during.pdf');
    expect(up.status).toBe(201);
    expect(up.body).toMatchObject({ storage: 'local', pendingStorage: 's3' });
    expect(Date.now() - started).toBeLessThan(20_000);
    started = Date.now();
    const down = await t.request().get(`${before.headers.location}/download`);
    expect(down.status).toBe(503);
    expect(Date.now() - started).toBeLessThan(20_000);
  }, 60_000);

  test('invariant: with S3_FALLBACK=fail an upload S3 cannot take is a 503 that keeps nothing, on disk or in the table', async () => {
    const strict = await startTestApp({ storage: 's3', env: { S3_FALLBACK: 'fail' } });
    try {
      const id = (await strict.request().post('/api/customers').send({ name: 'Strict AG' })).body.id;
      await strict.s3!.down();
      const res = await strict.request().post(`/api/customers/${id}/documents`).attach('file', files.pdf(2 * MB), 'a.pdf');
      expect(res.status).toBe(503);
      expect(res.body.error.code).toBe('STORAGE_UNAVAILABLE');
      await strict.s3!.up();
      expect(await strict.storedFiles()).toEqual([]);
      expect((await strict.request().get(`/api/customers/${id}/documents`)).body.documents).toEqual([]);
    } finally {
      await strict.close();
    }
  });

  test('invariant: with S3_FALLBACK=fail, an upload S3 stored but whose answer was lost is a 503, and its object goes once S3 answers again', async () => {
    const strict = await startTestApp({ storage: 's3', env: { S3_FALLBACK: 'fail' } });
    try {
      const id = (await strict.request().post('/api/customers').send({ name: 'Strict AG' })).body.id;
      const proxy = strict.s3!.proxy;
      // S3 has stored the object when it answers; the answer never arrives, and S3 is gone for the retries.
      let wentDown = Promise.resolve();
      proxy.tamper((chunk) => {
        if (!chunk.toString('latin1').startsWith('HTTP/1.1 200')) return chunk;
        proxy.tamper();
        wentDown = proxy.down();
        return Buffer.alloc(0);
      });
      const res = await strict.request().post(`/api/customers/${id}/documents`).attach('file', files.pdf(20_000), 'a.pdf');
      expect(res.status).toBe(503);
      expect(await strict.services.deletions.pending()).toBe(1);

      await wentDown;
      await proxy.up();
      expect(await strict.storedFiles()).toHaveLength(1);
      expect(await strict.services.deletions.runDue()).toEqual({ removed: 1, failed: 0 });
      expect(await strict.storedFiles()).toEqual([]);
      expect((await strict.request().get(`/api/customers/${id}/documents`)).body.documents).toEqual([]);
    } finally {
      await strict.close();
    }
  });

  test('invariant: an upload kept on disk while S3 is down, its customer deleted meanwhile: 404, and the key S3 may hold goes once S3 answers', async () => {
    await t.s3!.down();
    const res = await uploadAcrossCustomerDelete(() => t.request(), port);
    expect(res.status).toBe(404);
    await t.settle();
    // The local file is gone; S3 failed the upload, but may have stored it without answering: queued.
    expect(await t.storedFiles({ localOnly: true })).toEqual([]);
    expect(await queued()).toBe(1);
    await t.s3!.up();
    expect(await t.services.deletions.runDue()).toEqual({ removed: 1, failed: 0 });
    expect(await t.storedFiles()).toEqual([]);
  });

  test('invariant: a sync cut off after its copy, or two instances syncing at once, end with one row on one S3 object and no local copy', async () => {
    await t.s3!.down();
    const docs = [];
    for (const name of ['a.pdf', 'b.pdf']) {
      const res = await t.request().post(uploadPath()).attach('file', files.pdf(100_000), name);
      expect(res.body.pendingStorage).toBe('s3');
      docs.push(res.body);
    }
    await t.s3!.up();
    // a.pdf: a run that copied it and died before switching the row left its object behind, stale bytes even.
    const key = `customer-documents/${customerId}/${docs[0].storedFileName}`;
    await t.s3!.client.send(new PutObjectCommand({ Bucket: t.s3!.config.bucket, Key: key, Body: 'partial' }));
    // Two instances run the job at the same moment.
    const runs = await Promise.all([t.services.sync.run(), t.services.sync.run()]);
    expect(runs.reduce((n, r) => n + r.failed, 0)).toBe(0);
    await t.services.deletions.runDue();
    for (const doc of docs) {
      const now = await row(doc.id);
      expect(now).toMatchObject({ storage: 's3', pending_storage: null });
      expect(sha256(await s3Object(now.file_path))).toBe(doc.sha256);
    }
    const stored = (await t.storedFiles()).sort();
    expect(stored).toEqual(docs.map((d) => `s3:customer-documents/${customerId}/${d.storedFileName}`).sort());
    expect(await queued()).toBe(0);
  });

  (process.env.DATABASE_URL ? test : test.skip)(
    'a sync whose lock is lost with its database connection goes no further than the document under way; the next pass finishes (Postgres)',
    async () => {
      await t.s3!.down();
      const ids: number[] = [];
      for (const name of ['a.pdf', 'b.pdf', 'c.pdf']) ids.push((await t.request().post(uploadPath()).attach('file', files.pdf(20_000), name)).body.id);
      await t.s3!.up();
      const other = await t.database.openAgain();
      try {
        // The first move hangs on S3 while the lock's backend is ended, as a failover or an administrator would.
        t.s3!.proxy.stall();
        const pass = t.services.sync.run();
        await eventually(async () => {
          const [{ ended }] = await other.query<{ ended: boolean }>(
            `SELECT coalesce(bool_or(pg_terminate_backend(l.pid)), false) AS ended FROM pg_locks l
              WHERE l.locktype = 'advisory' AND l.objid = (hashtextextended($1, 0) & 4294967295)::oid
                AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
            [MOVE_LOCK],
          );
          return ended;
        });
        await new Promise((resolve) => setTimeout(resolve, 200)); // for the connection's end to reach the holder
        t.s3!.proxy.unstall();
        // The end can reach it before its first document or during it: either way it goes no further.
        const first = await pass;
        expect(first.moved).toBeLessThanOrEqual(1);
        const waiting = (await Promise.all(ids.map(row))).filter((r) => r.pending_storage === 's3');
        expect(waiting).toHaveLength(3 - first.moved);
        expect(await t.services.sync.run()).toEqual({ moved: 3 - first.moved, failed: 0 });
      } finally {
        t.s3!.proxy.unstall();
        await other.close();
      }
    },
  );

  test('invariant: a waiting file that no longer matches its recorded sha256 is not moved: the row stays local, its file stays, no copy is left on S3', async () => {
    await t.s3!.down();
    const res = await t.request().post(uploadPath()).attach('file', files.pdf(50_000), 'rotting.pdf');
    expect(res.body.pendingStorage).toBe('s3');
    await t.s3!.up();
    // The disk corrupted it while it waited: same size, one byte flipped.
    const file = path.join(t.uploadDir, res.body.storedFileName);
    const bytes = await fs.readFile(file);
    bytes[bytes.length - 1] ^= 0xff;
    await fs.writeFile(file, bytes);

    expect(await t.services.sync.run()).toEqual({ moved: 0, failed: 1 });
    await t.services.deletions.runDue();
    expect(await row(res.body.id)).toMatchObject({ storage: 'local', pending_storage: 's3' });
    expect(await t.storedFiles()).toEqual([res.body.storedFileName]);
    expect(await queued()).toBe(0);
  });

  test('invariant: a document deleted while it waits to move leaves nothing behind, local or on S3', async () => {
    await t.s3!.down();
    const res = await t.request().post(uploadPath()).attach('file', files.pdf(), 'short-lived.pdf');
    expect(res.body.pendingStorage).toBe('s3');
    expect((await t.request().delete(res.headers.location)).status).toBe(204);
    await t.settle();
    await t.s3!.up();
    expect(await t.services.sync.run()).toEqual({ moved: 0, failed: 0 });
    await t.services.deletions.runDue();
    expect(await t.storedFiles()).toEqual([]);
    expect(await queued()).toBe(0);
  });
});

describe('the background job in a running service', () => {
  test('invariant: without anyone asking, a document kept on disk during an outage moves to S3 within SYNC_INTERVAL of S3 returning', async () => {
    const database = await createTestDb();
    const s3 = await startS3();
    const uploadDir = await fs.mkdtemp(path.join(os.tmpdir(), 'uploads-'));
    const config = loadConfig({ NODE_ENV: 'test', PORT: '0', UPLOAD_DIR: uploadDir, SYNC_INTERVAL: '200ms', ...s3.env });
    const service = await startService(config, logger, { db: database.db, s3Client: s3.client });
    try {
      const http = supertest(`http://127.0.0.1:${service.port}`);
      const customerId = (await http.post('/api/customers').send({ name: 'Patient Ltd' })).body.id;
      await s3.down();
      const doc = await http.post(`/api/customers/${customerId}/documents`).attach('file', files.pdf(), 'kept.pdf');
      expect(doc.body).toMatchObject({ storage: 'local', pendingStorage: 's3' });
      await new Promise((r) => setTimeout(r, 500)); // runs of the job while S3 is down move nothing
      expect((await http.get(doc.headers.location)).body.pendingStorage).toBe('s3');
      await s3.up();
      await eventually(async () => (await http.get(doc.headers.location)).body.storage === 's3', 10_000, 'moved to S3');
      expect((await http.get(doc.headers.location)).body.pendingStorage).toBeNull();
      await eventually(async () => (await fs.readdir(uploadDir)).filter((f) => f !== '.tmp').length === 0, 5_000, 'local copy removed');
    } finally {
      await service.close();
      await s3.stop();
      await database.close();
      await fs.rm(uploadDir, { recursive: true, force: true });
    }
  });
});

describe('a store that refuses the service at startup', () => {
  let database: Awaited<ReturnType<typeof createTestDb>>;
  let s3: Awaited<ReturnType<typeof startS3>>;
  let uploadDir: string;
  beforeAll(async () => {
    database = await createTestDb();
    s3 = await startS3();
    uploadDir = await fs.mkdtemp(path.join(os.tmpdir(), 'uploads-'));
  });
  afterAll(async () => {
    await s3.stop();
    await database.close();
    await fs.rm(uploadDir, { recursive: true, force: true });
  });
  const start = (env: Record<string, string>, startupRechecksMs = [50, 50]) =>
    startService(loadConfig({ NODE_ENV: 'test', PORT: '0', UPLOAD_DIR: uploadDir, ...s3.env, ...env }), logger, { db: database.db, startupRechecksMs });

  // Taken for an outage, the deploy would go live "degraded", its uploads kept on a disk the next deploy replaces.
  test.each([
    ['no such bucket', { AWS_S3_BUCKET_NAME: 'no-such-bucket' }, /NoSuchBucket|does not exist/],
    ['credentials S3 does not know', { AWS_ACCESS_KEY_ID: 'AKIAUNKNOWN', AWS_SECRET_ACCESS_KEY: 'not-the-secret' }, /InvalidAccessKeyId|does not exist in our records/],
  ])('%s: the start fails, saying what to check', async (_what, env, cause) => {
    const failed = await start(env).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failed).toBeInstanceOf(StorageRefusedError);
    expect(explain(failed)).toMatch(/^S3 refuses this service: check AWS_S3_BUCKET_NAME, AWS_REGION \(or AWS_S3_ENDPOINT\) and the credentials/);
    expect(explain(failed)).toMatch(cause);
  });

  test('a bucket made while the service starts (a compose file, an init job): asked again, and the start goes on', async () => {
    const answered = s3.proxy.bytes.toClient;
    const starting = start({ AWS_S3_BUCKET_NAME: 'made-late' }, [1_000, 5_000]);
    // Made once S3 has answered the first check (NoSuchBucket), so that the start goes on only by asking again.
    await eventually(() => s3.proxy.bytes.toClient > answered, 5_000, 'the first check answered');
    await s3.client.send(new CreateBucketCommand({ Bucket: 'made-late' }));
    const service = await starting;
    await service.close();
  });

  test('S3 down at startup is an outage, not a refusal: the service starts, degraded', async () => {
    await s3.down();
    try {
      const service = await start({});
      try {
        const ready = await supertest(`http://127.0.0.1:${service.port}`).get('/ready');
        expect(ready.body).toMatchObject({ checks: { storage: 'degraded' } });
      } finally {
        await service.close();
      }
    } finally {
      await s3.up();
    }
  });
});

