import http from 'node:http';
import { READY_MAX_AGE_MS } from '../../src/http/health';
import { startTestApp } from '../helpers/app';
import { createTestDb } from '../helpers/db';
import { files } from '../helpers/files';
import { eventually } from '../helpers/wait';

describe('health and an unavailable database', () => {
  test('200 with the storage and database in use; 503 JSON everywhere once the database is gone', async () => {
    const t = await startTestApp({ storage: 's3' });
    try {
      const ok = await t.request().get('/health');
      expect(ok.status).toBe(200);
      expect(ok.body).toEqual({ status: 'ok', storage: 's3', database: t.database.kind });

      await t.database.db.close();
      const down = await t.request().get('/health');
      expect(down.status).toBe(503);
      expect(down.body).toMatchObject({ status: 'unavailable', error: { code: 'DATABASE_UNAVAILABLE' } });
      for (const res of [
        await t.request().get('/api/customers'),
        await t.request().post('/api/customers').send({ name: 'x' }),
        await t.request().get('/api/customers/1/documents/1/download'),
      ]) {
        expect(res.status).toBe(503);
        expect(res.body.error.code).toBe('DATABASE_UNAVAILABLE');
        expect(res.headers['retry-after']).toBe('5');
      }
    } finally {
      await t.close().catch(() => undefined);
    }
  });

  test('local storage is reported as local', async () => {
    const t = await startTestApp();
    try {
      expect((await t.request().get('/health')).body).toMatchObject({ status: 'ok', storage: 'local' });
    } finally {
      await t.close();
    }
  });
});

describe('readiness (/ready)', () => {
  test('200 when the database answers, every migration is applied and the store is reachable', async () => {
    const t = await startTestApp({ storage: 's3' });
    try {
      const res = await t.request().get('/ready');
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ status: 'ready', checks: { database: 'ok', migrations: 'ok', storage: 'ok' } });
    } finally {
      await t.close();
    }
  });

  test('S3 down: still ready but degraded while uploads fall back to disk; with S3_FALLBACK=fail, 503 naming the store; ready again once it is back', async () => {
    const t = await startTestApp({ storage: 's3' });
    const strict = await startTestApp({ storage: 's3', env: { S3_FALLBACK: 'fail' } });
    try {
      await t.s3!.down();
      const degraded = await t.request().get('/ready');
      expect(degraded.status).toBe(200);
      expect(degraded.body).toEqual({ status: 'ready', checks: { database: 'ok', migrations: 'ok', storage: 'degraded' } });
      await t.s3!.up();
      // An answer serves probes for a second (READY_MAX_AGE_MS): the recovery shows in the next one after that.
      await eventually(async () => (await t.request().get('/ready')).body.checks.storage === 'ok');

      await strict.s3!.down();
      const res = await strict.request().get('/ready');
      expect(res.status).toBe(503);
      expect(res.body).toMatchObject({
        status: 'unavailable',
        checks: { database: 'ok', migrations: 'ok', storage: 'failing' },
        error: { code: 'NOT_READY' },
      });
      await strict.s3!.up();
      await eventually(async () => (await strict.request().get('/ready')).status === 200);
    } finally {
      await t.close();
      await strict.close();
    }
  });

  test('probes share one check: however often /ready is called, the store is asked about once a second', async () => {
    const t = await startTestApp({ storage: 's3' });
    try {
      // Counted where the probe reaches the store; the calls go through to the real S3 server.
      const check = jest.spyOn(t.storage.primary, 'check');
      const started = performance.now();
      const answers = await Promise.all(Array.from({ length: 50 }, () => t.request().get('/ready')));
      expect(answers.every((res) => res.status === 200 && res.body.checks.storage === 'ok')).toBe(true);
      // One check, or two should the 50 straddle the end of the first answer's second on a slow machine.
      expect(check.mock.calls.length).toBeLessThanOrEqual(2);
      while (performance.now() - started < 2_500) await t.request().get('/ready').expect(200);
      const elapsed = performance.now() - started;
      // About once a second: 50 at once and a steady stream for 2.5 s made three or four checks, not hundreds.
      expect(check.mock.calls.length).toBeGreaterThanOrEqual(2);
      expect(check.mock.calls.length).toBeLessThanOrEqual(Math.ceil(elapsed / READY_MAX_AGE_MS) + 1);
    } finally {
      await t.close();
    }
  });

  test('503 while migrations are missing, and when the database is gone', async () => {
    const database = await createTestDb();
    const t = await startTestApp({ database });
    try {
      await database.db.exec('DROP TABLE document_file_deletions; DELETE FROM document_store_migrations WHERE version = \'005\'');
      const pending = await t.request().get('/ready');
      expect(pending.status).toBe(503);
      expect(pending.body.checks).toEqual({ database: 'ok', migrations: 'failing', storage: 'ok' });
      await database.db.close();
      await eventually(async () => (await t.request().get('/ready')).body.checks.database === 'failing');
      expect((await t.request().get('/ready')).status).toBe(503);
    } finally {
      await t.close().catch(() => undefined);
      await database.close().catch(() => undefined);
    }
  });
});

describe('metrics (/metrics)', () => {
  test('requests by route template and status, bytes up and down, storage calls, queue lengths', async () => {
    const t = await startTestApp();
    try {
      const customer = (await t.request().post('/api/customers').send({ name: 'Counted Inc' })).body.id;
      const content = files.pdf(10_000);
      const doc = await t.request().post(`/api/customers/${customer}/documents`).attach('file', content, 'a.pdf');
      await t.request().get(`${doc.headers.location}/download`);
      await t.request().get(`/api/customers/${customer}/documents/999999`);
      // A response is counted once the server has finished it, which can be a moment after the client has it all.
      await eventually(async () => (await t.request().get('/metrics')).text.includes('document_downloaded_bytes_total{storage="local"} 10000'));
      const res = await t.request().get('/metrics');
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/plain/);
      const text = res.text;
      expect(text).toContain('http_requests_total{method="POST",route="/api/customers/:customerId/documents",status="201"} 1');
      expect(text).toContain('http_requests_total{method="GET",route="/api/customers/:customerId/documents/:documentId/download",status="200"} 1');
      expect(text).toContain('http_requests_total{method="GET",route="/api/customers/:customerId/documents/:documentId",status="404"} 1');
      expect(text).toContain('document_uploaded_bytes_total{storage="local"} 10000');
      expect(text).toContain('document_downloaded_bytes_total{storage="local"} 10000');
      expect(text).toMatch(/storage_operation_duration_seconds_count\{storage="local",operation="put",outcome="ok"\} 1/);
      expect(text).toContain('document_file_deletions_pending 0');
      expect(text).toContain('documents_pending_move 0');
      expect(text).toContain('process_resident_memory_bytes');
    } finally {
      await t.close();
    }
  });

  test('a request target in absolute form is counted by its path: made-up hosts make no new series', async () => {
    const t = await startTestApp();
    try {
      const port = await t.listen();
      const get = (target: string) =>
        new Promise<number>((resolve, reject) => {
          // Node's client sends `path` as the request target as it is: here `GET http://host-1/health HTTP/1.1`.
          http.get({ host: '127.0.0.1', port, path: target }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          }).on('error', reject);
        });
      for (let i = 0; i < 3; i++) expect(await get(`http://host-${i}.example/health?x=${i}`)).toBe(200);
      expect(await get('http://host-3.example/api/customers/1/documents')).toBe(404);
      await eventually(async () => /route="\/health",status="200"} 3/.test((await t.request().get('/metrics')).text));
      const text = (await t.request().get('/metrics')).text;
      expect(text).toContain('http_requests_total{method="GET",route="/health",status="200"} 3');
      expect(text).toContain('http_requests_total{method="GET",route="/api/customers/:customerId/documents",status="404"} 1');
      expect(text).not.toContain('example');
    } finally {
      await t.close();
    }
  });

  test('the queue gauges drop out of a scrape while the database is away, rather than read 0', async () => {
    const t = await startTestApp();
    try {
      await t.database.db.query("INSERT INTO document_file_deletions (storage, storage_key) VALUES ('local', 'gone.pdf')");
      expect((await t.request().get('/metrics')).text).toMatch(/^document_file_deletions_pending 1$/m);
      await t.database.db.close();
      const res = await t.request().get('/metrics');
      expect(res.status).toBe(200);
      expect(res.text).toContain('# TYPE document_file_deletions_pending gauge');
      expect(res.text).not.toMatch(/^document_file_deletions_pending /m);
      expect(res.text).not.toMatch(/^documents_pending_move /m);
      expect(res.text).toContain('process_resident_memory_bytes');
    } finally {
      await t.close().catch(() => undefined);
    }
  });

  test('protected like /api when authentication is on', async () => {
    const t = await startTestApp({ env: { API_TOKENS: 'metrics-token-0123456789' } });
    try {
      expect((await t.request().get('/metrics')).status).toBe(401);
      const res = await t.request().get('/metrics').set('Authorization', 'Bearer metrics-token-0123456789');
      expect(res.status).toBe(200);
    } finally {
      await t.close();
    }
  });
});
