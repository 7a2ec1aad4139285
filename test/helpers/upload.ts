import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { EventEmitter, once } from 'node:events';
import type supertest from 'supertest';
import { untilDrained } from '../../src/streams';

export interface StreamingUploadResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: any;
}

/**
 * An upload sent the way a browser on a slow line sends one: a multipart body written chunk by chunk, honouring
 * backpressure, that a test can pause, resume or cut off midway, and watch: how much was sent, when the server
 * answered. The file is a PDF of `size` bytes (random after its signature).
 */
export interface StreamingUpload {
  /** File bytes the client has handed to its socket so far. */
  sent(): number;
  /** Resolves once `bytes` of the file have been sent. */
  reached(bytes: number): Promise<void>;
  pause(): void;
  resume(): void;
  /** Drops the connection, as a closed browser tab does. */
  abort(): void;
  /** The server's answer; rejects when the connection fails first. */
  readonly response: Promise<StreamingUploadResult>;
  /** The sha256 of the whole file (what a complete upload must store). */
  readonly sha256: string;
}

export function streamUpload(options: {
  port: number;
  path: string;
  size: number;
  fileName?: string;
  headers?: Record<string, string>;
  chunkSize?: number;
}): StreamingUpload {
  const { size, chunkSize = 64 * 1024 } = options;
  const boundary = `upload-${randomBytes(8).toString('hex')}`;
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${options.fileName ?? 'upload.pdf'}"\r\n` +
      'Content-Type: application/pdf\r\n\r\n',
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const file = Buffer.concat([Buffer.from('%PDF-1.7\n'), randomBytes(Math.max(0, size - 9))]).subarray(0, size);
  const sha256 = createHash('sha256').update(file).digest('hex');

  const req = http.request({
    port: options.port,
    host: '127.0.0.1',
    method: 'POST',
    path: options.path,
    headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}`, ...options.headers },
  });
  let sent = 0;
  let paused = false;
  let stopped = false;
  const progress = new EventEmitter();
  const response = new Promise<StreamingUploadResult>((resolve, reject) => {
    req.on('response', (res) => {
      stopped = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // not JSON: kept as text
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
      });
      res.on('error', reject);
    });
    req.on('error', (err) => {
      stopped = true;
      reject(err);
    });
  });
  response.catch(() => undefined);

  (async () => {
    const write = async (chunk: Buffer) => {
      if (!req.write(chunk)) await untilDrained(req);
    };
    await write(head);
    while (sent < size && !stopped) {
      while (paused && !stopped) await once(progress, 'resume');
      if (stopped) break;
      const chunk = file.subarray(sent, Math.min(size, sent + chunkSize));
      await write(chunk);
      sent += chunk.length;
      progress.emit('sent');
    }
    if (!stopped) req.end(tail);
  })().catch(() => undefined);

  return {
    sent: () => sent,
    async reached(bytes) {
      while (sent < bytes) {
        if (stopped) throw new Error(`the upload stopped at ${sent} bytes, before ${bytes}`);
        await Promise.race([once(progress, 'sent'), response.then(() => undefined, () => undefined)]);
      }
    },
    pause() {
      paused = true;
    },
    resume() {
      paused = false;
      progress.emit('resume');
    },
    abort() {
      stopped = true;
      progress.emit('resume');
      req.destroy();
    },
    response,
    sha256,
  };
}

/**
 * An upload to a customer of its own, who is deleted while the file streams (paused at 1 MB of 3): the upload's
 * answer. `api` is the service's supertest client.
 */
export async function uploadAcrossCustomerDelete(api: () => supertest.Agent, port: number): Promise<StreamingUploadResult> {
  const customer = (await api().post('/api/customers').send({ name: 'Leaving Soon' })).body.id as number;
  const MB = 1024 * 1024;
  const upload = streamUpload({ port, path: `/api/customers/${customer}/documents`, size: 3 * MB, chunkSize: 128 * 1024 });
  await upload.reached(1 * MB);
  upload.pause();
  const deleted = await api().delete(`/api/customers/${customer}`);
  if (deleted.status !== 204) throw new Error(`the customer's delete answered ${deleted.status}`);
  upload.resume();
  return upload.response;
}

