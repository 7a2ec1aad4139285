import fs from 'node:fs/promises';
import path from 'node:path';
import { startServerProcess } from '../helpers/process';
import { createServiceEnv, type ServiceEnv } from '../helpers/service-env';
import { sha256 } from '../helpers/streams';
import { streamUpload } from '../helpers/upload';
import { eventually } from '../helpers/wait';

const MB = 1024 * 1024;

describe('graceful shutdown (SIGTERM to the service process)', () => {
  let env: ServiceEnv;
  beforeEach(async () => {
    env = await createServiceEnv('local');
  });
  afterEach(async () => {
    await env.close();
  });

  const createCustomer = async (url: string) =>
    ((await (await fetch(`${url}/api/customers`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"name":"Shutdown Oy"}' })).json()) as { id: number }).id;

  test('invariant: an upload in flight finishes (201) while new connections are refused; the process then exits 0, and the document is there after a restart', async () => {
    const service = await startServerProcess(env.env);
    const customerId = await createCustomer(service.url);
    const upload = streamUpload({ port: service.port, path: `/api/customers/${customerId}/documents`, size: 4 * MB, chunkSize: 128 * 1024 });
    await upload.reached(1 * MB);
    upload.pause();

    service.kill('SIGTERM');
    await eventually(() => fetch(`${service.url}/health`).then(() => false, () => true), 5_000, 'new connections refused');
    upload.resume();
    const res = await upload.response;
    expect(res.status).toBe(201);
    expect(res.headers.connection).toBe('close'); // the client is told to reconnect elsewhere
    expect(await service.exited).toEqual({ code: 0, signal: null });
    expect(service.logs.some((l) => l.includes('"msg":"shut down"'))).toBe(true);

    const again = await startServerProcess(env.env);
    try {
      const download = await fetch(`${again.url}/api/customers/${customerId}/documents/${res.body.id}/download`);
      expect(download.status).toBe(200);
      expect(sha256(Buffer.from(await download.arrayBuffer()))).toBe(upload.sha256);
    } finally {
      again.kill('SIGTERM');
      await again.exited;
    }
  }, 90_000);

  test('invariant: a request still in flight at SHUTDOWN_TIMEOUT is cut off, keeps nothing, and the process still exits 0', async () => {
    const service = await startServerProcess({ ...env.env, SHUTDOWN_TIMEOUT: '1s' });
    const customerId = await createCustomer(service.url);
    const upload = streamUpload({ port: service.port, path: `/api/customers/${customerId}/documents`, size: 4 * MB, chunkSize: 128 * 1024 });
    await upload.reached(1 * MB);
    upload.pause(); // a client that has stalled: it would hold the shutdown for IDLE_TIMEOUT_MS

    const started = Date.now();
    service.kill('SIGTERM');
    expect(await service.exited).toEqual({ code: 0, signal: null });
    expect(Date.now() - started).toBeLessThan(10_000);
    await expect(upload.response).rejects.toThrow();
    expect(service.logs.some((l) => l.includes('SHUTDOWN_TIMEOUT'))).toBe(true);
    // The cut-off upload discarded its temporary file before the process exited.
    const leftovers = await fs.readdir(path.join(env.uploadDir, '.tmp')).catch(() => []);
    expect(leftovers).toEqual([]);
    expect((await fs.readdir(env.uploadDir)).filter((f) => f !== '.tmp')).toEqual([]);

    const again = await startServerProcess(env.env);
    try {
      const list = (await (await fetch(`${again.url}/api/customers/${customerId}/documents`)).json()) as { documents: unknown[] };
      expect(list.documents).toEqual([]);
    } finally {
      again.kill('SIGTERM');
      await again.exited;
    }
  }, 90_000);
});
