import { createHash } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config';
import { type RunningService, startService } from '../../src/server';
import { createLogger } from '../../src/logger';
import { startTestApp, type TestApp } from '../helpers/app';
import { createTestDb, type TestDb } from '../helpers/db';
import { files } from '../helpers/files';
import { logLines } from '../helpers/logs';
import { sha256 } from '../helpers/streams';
import { streamUpload } from '../helpers/upload';
import { eventually } from '../helpers/wait';

const MB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Opens a raw connection; resolves once connected. */
function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Everything the server sends on `socket` until it closes it (or `ms` pass). */
function answerOf(socket: net.Socket, ms = 10_000): Promise<string> {
  return new Promise((resolve) => {
    let answer = '';
    socket.on('data', (c: Buffer) => (answer += c.toString()));
    socket.on('error', () => undefined);
    socket.once('close', () => resolve(answer));
    setTimeout(() => resolve(answer), ms).unref();
  });
}

/** An upload's request head and its file part's headers, as a raw client writes them; the file's bytes follow. */
function uploadHead(customerId: number, boundary: string, fileName: string): string {
  return (
    `POST /api/customers/${customerId}/documents HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\n` +
    `Content-Length: 100000\r\n\r\n--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${fileName}"\r\n` +
    'Content-Type: application/pdf\r\n\r\n'
  );
}

describe('a request body that comes too slowly', () => {
  let t: TestApp;
  let port: number;
  let customerId: number;
  beforeAll(async () => {
    // Half a second of grace, then 10 kB/s: the production rule (30 s, 500 B/s) at a test's pace.
    t = await startTestApp({ bodyRate: { graceMs: 500, bytesPerSecond: 10_000 } });
    port = await t.listen();
    customerId = (await t.request().post('/api/customers').send({ name: 'Trickle & Co' })).body.id;
  });
  afterAll(async () => {
    await t.close();
  });

  test('an upload trickling a byte at a time gets 408 REQUEST_TIMEOUT, its connection closed, and nothing of it kept', async () => {
    const socket = await connect(port);
    const answer = answerOf(socket);
    socket.write(`${uploadHead(customerId, 'trickle', 'slow.pdf')}%PDF-1.7\n`);
    const trickle = setInterval(() => socket.write('x', () => undefined), 100);
    try {
      const started = Date.now();
      const text = await answer;
      expect(text.split('\r\n')[0]).toBe('HTTP/1.1 408 Request Timeout');
      expect(text).toMatch(/\r\nConnection: close\r\n/i);
      expect(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4))).toEqual({
        error: { code: 'REQUEST_TIMEOUT', message: 'The request body arrived too slowly; send it again' },
      });
      // Closed by the server, within the grace and the time its bytes earned, not at the idle timeout.
      expect(socket.destroyed || socket.readableEnded).toBe(true);
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      clearInterval(trickle);
      socket.destroy();
    }
    await t.settle();
    await eventually(async () => (await t.storedFiles()).length === 0, 5_000, 'the partial upload removed');
    expect((await t.request().get(`/api/customers/${customerId}/documents`)).body.documents).toEqual([]);
  }, 30_000);

  test('an upload that pauses after sending much has earned the time: it is not cut off', async () => {
    const upload = streamUpload({ port, path: `/api/customers/${customerId}/documents`, size: 2 * MB });
    await upload.reached(1 * MB); // 1 MB at 10 kB/s earns 100 s
    upload.pause();
    await sleep(1_500); // three times the grace
    upload.resume();
    const res = await upload.response;
    expect(res.status).toBe(201);
    expect(res.body.sha256).toBe(upload.sha256);
  }, 30_000);
});

describe('a form whose fields after the file do not come', () => {
  test('the rest of the form must follow its stored file within the tail: 408, and the file goes', async () => {
    // Without it, the file stored under its final name waits for its row as long as the client pauses, and
    // storage:verify --fix, which cannot tell, may remove it before the row comes.
    const t = await startTestApp({ formTailMs: 300 });
    try {
      const port = await t.listen();
      const customerId = (await t.request().post('/api/customers').send({ name: 'Pausing GmbH' })).body.id;
      const socket = await connect(port);
      const answer = answerOf(socket);
      // The file part whole, then half a field after it, and no more.
      socket.write(`${uploadHead(customerId, 'pausing', 'a.pdf')}%PDF-1.7\nhello\r\n--pausing\r\nContent-Disposition: form-data; name="description"\r\n\r\nhalf a`);
      try {
        await eventually(async () => (await t.storedFiles()).length === 1, 5_000, 'the file stored');
        const text = await answer;
        expect(text.split('\r\n')[0]).toBe('HTTP/1.1 408 Request Timeout');
        expect(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)).error.code).toBe('REQUEST_TIMEOUT');
      } finally {
        socket.destroy();
      }
      await t.settle();
      await eventually(async () => (await t.storedFiles()).length === 0, 5_000, 'the stored file removed');
      expect((await t.request().get(`/api/customers/${customerId}/documents`)).body.documents).toEqual([]);
    } finally {
      await t.close();
    }
  }, 30_000);
});

/** The open file descriptors of this process that point at a file under `dir`. */
async function openFilesUnder(dir: string): Promise<number> {
  const fds = await fs.readdir('/proc/self/fd');
  const targets = await Promise.all(fds.map((fd) => fs.readlink(`/proc/self/fd/${fd}`).catch(() => '')));
  return targets.filter((target) => target.startsWith(dir)).length;
}

/** A raw GET of `path` whose client reads nothing until `read()`; `received()` then resolves to every byte. */
async function unreadDownload(port: number, path: string) {
  const socket = await connect(port);
  socket.pause();
  socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
  let bytes = 0;
  const closed = new Promise<number>((resolve) => {
    socket.on('data', (c: Buffer) => (bytes += c.length));
    socket.on('error', () => undefined);
    socket.once('close', () => resolve(bytes));
  });
  return {
    socket,
    /** Reads what the server sent, and resolves to its bytes (headers included) once the server has closed. */
    received: () => {
      socket.resume();
      return closed;
    },
  };
}

for (const storage of ['local', 's3'] as const) {
  describe(`a download read too slowly (${storage})`, () => {
    const { lines, sink } = logLines();
    const content = files.pdf(48 * MB);
    let t: TestApp;
    let port: number;
    let location: string;
    beforeAll(async () => {
      // Half a second of grace, then 4 MB/s: the production rule (30 s, 500 B/s) at a test's pace. The file is
      // larger than the connection's kernel buffers, which the server fills before the client's pace shows.
      t = await startTestApp({
        storage,
        sendRate: { graceMs: 500, bytesPerSecond: 4 * MB },
        env: { MAX_UPLOAD_SIZE: '100mb' },
        logger: createLogger('warn', sink),
      });
      port = await t.listen();
      const customerId = (await t.request().post('/api/customers').send({ name: 'Slow Readers plc' })).body.id;
      const doc = await t.request().post(`/api/customers/${customerId}/documents`).attach('file', content, 'big.pdf');
      expect([doc.status, doc.body.storage]).toEqual([201, storage]);
      location = doc.headers.location;
    }, 60_000);
    afterAll(async () => {
      await t.close();
    });

    test('a client that stops reading is cut off once behind the minimum rate, and what it held is given back', async () => {
      const started = Date.now();
      const download = await unreadDownload(port, `${location}/download`);
      await eventually(() => lines.some((l) => l.includes('download read too slowly')), 30_000, 'the warning');
      const warning = JSON.parse(lines.find((l) => l.includes('download read too slowly'))!);
      expect(warning.level).toBe(40);
      // What was handed to the connection earned its time: cut off no sooner than the grace and those bytes allow.
      expect(warning.sentBytes).toBeGreaterThan(0);
      expect(warning.sentBytes).toBeLessThan(content.length);
      expect(warning.ms).toBeGreaterThanOrEqual(500 + (warning.sentBytes / (4 * MB)) * 1000 - 5);
      expect(Date.now() - started).toBeLessThan(30_000);
      // The file, or the S3 connection, is given back at once, while the client still has not read.
      if (storage === 'local') {
        await eventually(async () => (await openFilesUnder(t.uploadDir)) === 0, 2_000, 'the file closed');
      } else {
        await eventually(() => t.storage.gates.s3_download_sockets!.inUse === 0, 2_000, 'the S3 connection given back');
      }
      // The client, reading at last, gets the bytes sent before the cut, then the connection's end: never the file
      // whole, so it cannot mistake the cut for a complete download.
      const received = await download.received();
      expect(received).toBeLessThan(content.length);
    }, 60_000);

    /**
     * Downloads the document whole, calling `atByte` with each chunk's running count (to pause, or stall S3, once
     * far enough); resolves with the status, the bytes and their sha256.
     */
    const download = async (atByte: (bytes: number, response: http.IncomingMessage) => void) => {
      const response = await new Promise<http.IncomingMessage>((resolve) =>
        http.get({ port, host: '127.0.0.1', path: `${location}/download`, agent: false }, resolve),
      );
      const hash = createHash('sha256');
      let bytes = 0;
      response.on('data', (c: Buffer) => {
        hash.update(c);
        atByte((bytes += c.length), response);
      });
      await once(response, 'end');
      return { status: response.statusCode, bytes, sha256: hash.digest('hex') };
    };

    test('a client that reads at the rate gets the file whole, however long it pauses after earning the time', async () => {
      let paused = false;
      const got = await download((bytes, response) => {
        // Half the file read fast earns 6 s; a pause of 2 s, four times the grace, is well within it.
        if (!paused && bytes >= content.length / 2) {
          paused = true;
          response.pause();
          setTimeout(() => response.resume(), 2_000);
        }
      });
      expect(got.status).toBe(200);
      expect(got.bytes).toBe(content.length);
      expect(got.sha256).toBe(sha256(content));
    }, 60_000);

    (storage === 's3' ? test : test.skip)('a download whose store stalls is not cut off: its client is waiting, not slow', async () => {
      const warned = lines.filter((l) => l.includes('download read too slowly')).length;
      let stalled = false;
      const got = await download((bytes) => {
        // S3 stops sending for 4 s: longer than the grace and what the bytes sent so far have earned.
        if (!stalled && bytes >= 1 * MB) {
          stalled = true;
          t.s3!.proxy.stall();
          setTimeout(() => t.s3!.proxy.unstall(), 4_000);
        }
      });
      expect(got.bytes).toBe(content.length);
      expect(got.sha256).toBe(sha256(content));
      expect(lines.filter((l) => l.includes('download read too slowly'))).toHaveLength(warned);
    }, 60_000);
  });
}

describe('MAX_CONNECTIONS', () => {
  const { lines, sink } = logLines();
  let database: TestDb;
  let service: RunningService;
  beforeAll(async () => {
    database = await createTestDb();
    const config = loadConfig({
      NODE_ENV: 'test',
      PORT: '0',
      UPLOAD_DIR: path.join(os.tmpdir(), `max-connections-${process.pid}`),
      MAX_CONNECTIONS: '3',
    });
    service = await startService(config, createLogger('warn', sink), { db: database.db });
  });
  afterAll(async () => {
    await service?.close();
    await database.close();
  });

  test('a connection beyond the limit is closed on arrival; those open are served, and room frees as they close', async () => {
    const held = await Promise.all([connect(service.port), connect(service.port), connect(service.port)]);
    const extra = await connect(service.port);
    const refused = answerOf(extra, 5_000);
    extra.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n', () => undefined);
    expect(await refused).toBe('');
    expect(extra.readableEnded || extra.destroyed).toBe(true);
    // Ops are told, once (more are summed up a minute later).
    const again = await connect(service.port);
    again.destroy();
    await eventually(() => lines.some((l) => l.includes('MAX_CONNECTIONS reached')), 2_000, 'the warning');
    expect(lines.filter((l) => l.includes('MAX_CONNECTIONS reached'))).toHaveLength(1);

    // Those already open still get their answers.
    const served = answerOf(held[0], 2_000);
    held[0].write('GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect((await served).split('\r\n')[0]).toBe('HTTP/1.1 200 OK');

    for (const socket of held) socket.destroy();
    await eventually(() => fetch(`http://127.0.0.1:${service.port}/health`).then((r) => r.ok, () => false), 5_000, 'room again');
  }, 30_000);
});
