import { once } from 'node:events';
import fs from 'node:fs/promises';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { DeleteBucketCommand } from '@aws-sdk/client-s3';
import type { Express } from 'express';
import supertest from 'supertest';
import { createApp } from '../../src/app';
import { loadConfig } from '../../src/config';
import { migrate } from '../../src/db/migrate';
import { createLogger } from '../../src/logger';
import { READY_MAX_AGE_MS } from '../../src/http/health';
import { startService } from '../../src/server';
import { createStorage } from '../../src/storage';
import { createTestDb } from '../helpers/db';
import { startS3 } from '../helpers/s3';
import { logLines } from '../helpers/logs';
import { eventually } from '../helpers/wait';

const TOKEN = 'secret-bearer-token-0123456789';
const S3_SECRET = 'secret-s3-key-9876543210abcdef';

/**
 * The app on a migrated database and a temporary folder of its own, logging at `level` into `lines`; UPLOAD_DIR is
 * what `uploadDirIn` makes of the folder.
 */
async function withLoggedApp(
  level: string,
  uploadDirIn: (dir: string) => Promise<string>,
  run: (t: { app: Express; dir: string; lines: string[] }) => Promise<void>,
): Promise<void> {
  const { lines, sink } = logLines();
  const database = await createTestDb();
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'logged-app-'));
  try {
    await migrate(database.db);
    const config = loadConfig({ NODE_ENV: 'test', UPLOAD_DIR: await uploadDirIn(dir) });
    await run({ app: createApp({ config, db: database.db, storage: createStorage(config), logger: createLogger(level, sink) }), dir, lines });
  } finally {
    await database.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

test('request logs carry a request id, and never a bearer token or an S3 secret', async () => {
  const { lines, sink } = logLines();
  const logger = createLogger('debug', sink);
  const database = await createTestDb();
  const s3 = await startS3();
  try {
    // A secret of its own (s3rver accepts any), and a bucket removed once the service has started (it refuses to
    // start without one): every S3 call fails and its SDK error is logged, so a secret carried by the client into
    // an error would show in a line.
    const uploadDir = await fs.mkdtemp(path.join(os.tmpdir(), 'logging-uploads-'));
    const config = loadConfig({ NODE_ENV: 'test', PORT: '0', API_TOKENS: TOKEN, UPLOAD_DIR: uploadDir, ...s3.env, AWS_SECRET_ACCESS_KEY: S3_SECRET });
    const service = await startService(config, logger, { db: database.db });
    await s3.client.send(new DeleteBucketCommand({ Bucket: s3.config.bucket }));
    try {
      const http = supertest(`http://127.0.0.1:${service.port}`);
      const ok = await http.get('/api/customers').set('Authorization', `Bearer ${TOKEN}`);
      expect(ok.status).toBe(200);
      // The server as it runs: nothing that names the framework to a scanner.
      expect(ok.headers['x-powered-by']).toBeUndefined();
      const denied = await http.get('/api/customers').set('Authorization', `Bearer ${TOKEN}-wrong`);
      expect(denied.status).toBe(401);
      await new Promise((r) => setTimeout(r, 50));

      const requests = lines.map((l) => JSON.parse(l)).filter((l) => l.req);
      expect(requests).toHaveLength(2);
      expect(requests[0].req.id).toBe(ok.headers['x-request-id']);
      expect(requests[0].req.headers.authorization).toBe('[redacted]');
      // A client that puts credentials in the URL (the service reads none there) gets its 401, and they are not logged.
      const inUrl = await http.get(`/api/customers?access_token=${TOKEN}&password=hunter2-secret&page=2`);
      expect(inUrl.status).toBe(401);
      await eventually(() => lines.some((l) => l.includes(inUrl.headers['x-request-id'])), 2_000, 'the request logged');
      const logged = lines.map((l) => JSON.parse(l)).find((l) => l.req?.id === inUrl.headers['x-request-id']);
      expect(logged.req.url).toBe('/api/customers?access_token=[redacted]&password=[redacted]&page=2');
      expect(lines.join('\n')).not.toContain('hunter2-secret');
      const auth = { Authorization: `Bearer ${TOKEN}` };
      const customer = await http.post('/api/customers').set(auth).send({ name: 'Logged' });
      const upload = await http.post(`/api/customers/${customer.body.id}/documents`).set(auth).attach('file', Buffer.from('hello\n'), 'a.txt');
      expect(upload.body).toMatchObject({ storage: 'local', pendingStorage: 's3' });
      await eventually(() => lines.some((l) => /S3 failed during an upload/.test(l)), 5_000, 'the S3 failure logged');
      const all = lines.join('\n');
      expect(all).not.toContain(TOKEN);
      expect(all).not.toContain(S3_SECRET);
    } finally {
      await service.close();
    }
  } finally {
    await s3.stop();
    await database.close();
  }
});

test('a server fault is logged with its cause, and the client gets a message without a stack', async () => {
  const { lines, sink } = logLines();
  const database = await createTestDb();
  try {
    await migrate(database.db);
    const config = loadConfig({ NODE_ENV: 'test' });
    const app = createApp({ config, db: database.db, storage: createStorage(config), logger: createLogger('error', sink) });
    // A fault of ours: the table is gone from under the service.
    await database.db.exec('ALTER TABLE customers RENAME TO customers_gone');
    const res = await supertest(app).get('/api/customers');
    expect(res.status).toBe(500);
    expect(res.body).toEqual({ error: { code: 'INTERNAL_ERROR', message: 'Something went wrong on our side; it has been logged' } });
    expect(lines.join('')).toMatch(/customers.*does not exist/);
  } finally {
    await database.close();
  }
});

test('development logs are readable lines, still without a bearer token', async () => {
  let text = '';
  const sink = new PassThrough();
  sink.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const logger = createLogger('info', sink, { pretty: true });
  logger.info({ req: { headers: { authorization: `Bearer ${TOKEN}` } }, documentId: 7 }, 'document uploaded');
  await new Promise((r) => setTimeout(r, 50));
  expect(text).toMatch(/INFO.*document uploaded/);
  expect(text).toContain('documentId: 7');
  expect(() => JSON.parse(text.split('\n')[0])).toThrow(); // not a JSON line
  expect(text).not.toContain(TOKEN);
});

test('a line a service writes while handling a request carries that request id', async () => {
  await withLoggedApp('warn', async (dir) => dir, async ({ app, dir, lines }) => {
    const customer = (await supertest(app).post('/api/customers').send({ name: 'Logged' })).body.id;
    const doc = await supertest(app).post(`/api/customers/${customer}/documents`).attach('file', Buffer.from('hello\n'), 'a.txt');
    await fs.rm(path.join(dir, doc.body.storedFileName)); // the documents service warns that the file is missing
    const res = await supertest(app).get(`${doc.headers.location}/download`);
    expect(res.status).toBe(404);
    const warning = lines.map((l) => JSON.parse(l)).find((l) => l.msg === 'the file of a document is missing');
    expect(warning).toMatchObject({ requestId: res.headers['x-request-id'], documentId: doc.body.id });
  });
});

test('a download whose client closes the moment it has every byte is logged as completed, not aborted', async () => {
  await withLoggedApp('info', async (dir) => dir, async ({ app, lines }) => {
    const customer = (await supertest(app).post('/api/customers').send({ name: 'Logged' })).body.id;
    const doc = await supertest(app).post(`/api/customers/${customer}/documents`).attach('file', Buffer.from('hello world\n'), 'a.txt');
    const server = app.listen(0);
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    try {
      // As curl does: read to the end of Content-Length, then close, before the server has seen its own 'finish'.
      const download = () =>
        new Promise<void>((resolve, reject) => {
          const socket = net.connect(port, '127.0.0.1', () => socket.write(`GET ${doc.headers.location}/download HTTP/1.1\r\nHost: x\r\n\r\n`));
          let received = '';
          socket.on('data', (chunk) => {
            received += chunk.toString('latin1');
            const head = received.indexOf('\r\n\r\n');
            const length = Number(/content-length: (\d+)/i.exec(received)?.[1]);
            if (head !== -1 && received.length - head - 4 >= length) {
              socket.destroy();
              resolve();
            }
          });
          socket.on('error', reject);
        });
      for (let i = 0; i < 40; i++) await download();
      await eventually(() => logged().length === 40, 5_000, 'every download logged');
      expect(new Set(logged().map((l) => l.msg))).toEqual(new Set(['request completed']));
    } finally {
      server.close();
    }
    function logged() {
      return lines.map((l) => JSON.parse(l)).filter((l) => l.req?.url?.endsWith('/download'));
    }
  });
});

test('an S3 error naming the access key is logged without it, however deep in the causes', () => {
  const { lines, sink } = logLines();
  const logger = createLogger('info', sink);
  // The shape of the SDK's InvalidAccessKeyId, as the service wraps it: StorageUnavailableError, then AppError.
  const sdk = Object.assign(new Error('The AWS Access Key Id you provided does not exist in our records.'), {
    name: 'InvalidAccessKeyId',
    AWSAccessKeyId: 'AKIAEXAMPLEKEYID0001',
  });
  const storage = new Error('storage unavailable', { cause: sdk });
  const app = new Error('service unavailable', { cause: storage });
  logger.error({ err: app, cause: storage }, 'request failed');
  logger.error({ err: sdk }, 'direct');
  logger.warn({ cause: sdk }, 'cause only');
  const written = lines.join('');
  expect(written).toContain('InvalidAccessKeyId');
  expect(written).not.toContain('AKIAEXAMPLEKEYID0001');
});

test('a readiness check that fails is logged with its reason, once per change, and its recovery too', async () => {
  // UPLOAD_DIR under a file: no folder can be made there, as for a volume the service may not write, root or not.
  const underAFile = async (dir: string) => {
    await fs.writeFile(path.join(dir, 'volume'), '');
    return path.join(dir, 'volume', 'uploads');
  };
  await withLoggedApp('info', underAFile, async ({ app, dir, lines }) => {
    const ready = async () => (await supertest(app).get('/ready')).status;
    expect(await ready()).toBe(503);
    const failing = () => lines.map((l) => JSON.parse(l)).filter((l) => l.msg === 'readiness check failing: storage (local)');
    expect(failing()).toHaveLength(1);
    expect(failing()[0].err.message).toMatch(/ENOTDIR/);
    // The same failure again is not logged again.
    await new Promise((r) => setTimeout(r, READY_MAX_AGE_MS + 50));
    expect(await ready()).toBe(503);
    expect(failing()).toHaveLength(1);
    // Fixed by ops: the next check passes, and says so.
    await fs.rm(path.join(dir, 'volume'));
    await new Promise((r) => setTimeout(r, READY_MAX_AGE_MS + 50));
    expect(await ready()).toBe(200);
    expect(lines.map((l) => JSON.parse(l).msg)).toContain('readiness checks pass again');
  });
});
