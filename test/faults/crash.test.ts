import fs from 'node:fs/promises';
import path from 'node:path';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { startServerProcess, type ServerProcess } from '../helpers/process';
import { createServiceEnv, type ServiceEnv } from '../helpers/service-env';
import { sha256 } from '../helpers/streams';
import { streamUpload } from '../helpers/upload';
import { eventually } from '../helpers/wait';

interface Acked {
  id: number;
  customerId: number;
  sha256: string;
  storedFileName: string;
  size: number;
}

const json = (url: string, init?: RequestInit) =>
  fetch(url, init).then(async (r) => ({ status: r.status, body: (await r.json().catch(() => null)) as any }));

/**
 * A stream of uploads (1 KB to 3 MB, several at once) and deletes of documents already acknowledged, against a
 * service process, until the process is killed with SIGKILL. Returns what the service acknowledged.
 */
async function workload(service: ServerProcess, customers: number[], killAfterMs: number) {
  const acked = new Map<number, Acked>();
  const deleted = new Set<number>();
  // A delete whose answer the kill cut off may or may not have committed: the client cannot know, and neither can
  // the test. Such a document may be there (whole) or gone (with its file), never half of either.
  const unanswered = new Set<number>();
  // Acknowledgements that named other bytes than those sent: checked after the loop, which swallows errors.
  const wrongDigests: number[] = [];
  let running = true;
  const worker = async () => {
    while (running) {
      const live = [...acked.values()].filter((d) => !deleted.has(d.id));
      try {
        if (live.length > 0 && Math.random() < 0.3) {
          const doc = live[Math.floor(Math.random() * live.length)];
          if (unanswered.has(doc.id)) continue;
          unanswered.add(doc.id);
          const res = await fetch(`${service.url}/api/customers/${doc.customerId}/documents/${doc.id}`, { method: 'DELETE' });
          unanswered.delete(doc.id);
          if (res.status === 204) deleted.add(doc.id);
        } else {
          const customerId = customers[Math.floor(Math.random() * customers.length)];
          const size = 1024 + Math.floor(Math.random() * 3 * 1024 * 1024);
          const upload = streamUpload({ port: service.port, path: `/api/customers/${customerId}/documents`, size });
          const res = await upload.response;
          if (res.status === 201) {
            if (res.body.sha256 !== upload.sha256) wrongDigests.push(res.body.id);
            acked.set(res.body.id, { id: res.body.id, customerId, sha256: upload.sha256, storedFileName: res.body.storedFileName, size });
          }
        }
      } catch {
        // The connection died with the process: neither acknowledged nor refused.
      }
    }
  };
  const workers = Array.from({ length: 4 }, worker);
  await new Promise((r) => setTimeout(r, killAfterMs));
  // On a slow or busy machine the first seconds can pass with no delete answered yet; the kill waits for one, so the
  // deletes' invariants are always exercised (it still lands in the middle of the stream).
  await eventually(async () => deleted.size > 0, 30_000, 'a delete acknowledged before the kill');
  // No request starts once the kill is decided: one refused by a dead server would count as unanswered, and a
  // document lost in the crash would then pass for one whose delete may have committed.
  running = false;
  service.kill('SIGKILL');
  expect(await service.exited).toEqual({ code: null, signal: 'SIGKILL' });
  await Promise.all(workers);
  expect(wrongDigests).toEqual([]);
  return { acked, deleted, unanswered };
}

describe.each(['local', 's3'] as const)('kill -9 during uploads and deletes, on %s', (storage) => {
  let env: ServiceEnv;
  beforeEach(async () => {
    env = await createServiceEnv(storage);
  });
  afterEach(async () => {
    await env.close();
  });

  const fileExists = async (doc: Acked) => {
    if (storage === 'local') return fs.stat(path.join(env.uploadDir, doc.storedFileName)).then(() => true, () => false);
    const key = `customer-documents/${doc.customerId}/${doc.storedFileName}`;
    return env.s3!.client.send(new HeadObjectCommand({ Bucket: env.s3!.config.bucket, Key: key })).then(() => true, () => false);
  };

  test('after a restart: every row has its whole file, every acknowledged upload is there, every acknowledged delete is gone with its file, stale temporary files are swept', async () => {
    let service = await startServerProcess(env.env);
    const customers: number[] = [];
    for (const name of ['Crash AG', 'Crash BV']) {
      customers.push((await json(`${service.url}/api/customers`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name }) })).body.id);
    }
    const { acked, deleted, unanswered } = await workload(service, customers, 1_500 + Math.random() * 1_500);
    expect(acked.size).toBeGreaterThan(0);

    service = await startServerProcess(env.env);
    try {
      // Invariant: every row's file exists, with the row's recorded size and sha256 (read back through the service).
      let rows = 0;
      for (const customerId of customers) {
        const { body } = await json(`${service.url}/api/customers/${customerId}/documents`);
        for (const doc of body.documents) {
          rows++;
          const res = await fetch(`${service.url}/api/customers/${customerId}/documents/${doc.id}/download`);
          expect(res.status).toBe(200);
          const bytes = Buffer.from(await res.arrayBuffer());
          expect(bytes.length).toBe(doc.size);
          expect(sha256(bytes)).toBe(doc.sha256);
        }
      }
      // Invariant: no acknowledged upload is lost; no acknowledged delete comes back. A delete the kill left
      // unanswered went one way or the other, whole.
      const gone = new Set(deleted);
      for (const doc of acked.values()) {
        const { status, body } = await json(`${service.url}/api/customers/${doc.customerId}/documents/${doc.id}`);
        const expected = deleted.has(doc.id) ? [404] : unanswered.has(doc.id) ? [200, 404] : [200];
        expect({ id: doc.id, status, allowed: expected.includes(status) }).toEqual({ id: doc.id, status, allowed: true });
        if (status === 200) expect(body).toMatchObject({ sha256: doc.sha256, size: doc.size });
        else gone.add(doc.id);
      }
      expect(rows).toBeGreaterThanOrEqual(acked.size - gone.size);
      expect(deleted.size).toBeGreaterThan(0); // the deletes' invariants below were exercised
      // Invariant: the files of deleted documents are removed (the queue is worked through at startup).
      for (const id of gone) {
        await eventually(async () => !(await fileExists(acked.get(id)!)), 10_000, `file of deleted document ${id} removed`);
      }
    } finally {
      service.kill('SIGTERM');
      expect((await service.exited).code).toBe(0);
    }

    // Invariant: temporary files of uploads the kill cut off are never served, and are swept once stale. Time is
    // moved forward by ageing them, rather than waiting STALE_TEMP_MS.
    // One cut-off file is planted, so the sweep has something to do even when the kill left none; a fresh one, as
    // of an upload under way, must stay.
    const tmp = path.join(env.uploadDir, '.tmp');
    await fs.mkdir(tmp, { recursive: true });
    await fs.writeFile(path.join(tmp, 'planted-cut-off.part'), '%PDF-1.7 cut off');
    const temps = await fs.readdir(tmp);
    const anHourAgo = new Date(Date.now() - 60 * 60 * 1000);
    for (const name of temps) await fs.utimes(path.join(tmp, name), anHourAgo, anHourAgo);
    await fs.writeFile(path.join(tmp, 'planted-in-progress.part'), '%PDF-1.7 still arriving');
    service = await startServerProcess(env.env);
    try {
      await eventually(
        async () => JSON.stringify(await fs.readdir(tmp)) === JSON.stringify(['planted-in-progress.part']),
        10_000,
        'stale temporary files swept, the fresh one kept',
      );
    } finally {
      service.kill('SIGTERM');
      await service.exited;
    }
  }, 120_000);
});
