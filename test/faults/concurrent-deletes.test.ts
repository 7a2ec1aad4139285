import http from 'node:http';
import { createHash } from 'node:crypto';
import { createLogger } from '../../src/logger';
import { startTestApp, type TestApp } from '../helpers/app';
import { logLines } from '../helpers/logs';
import { files } from '../helpers/files';
import { sha256 } from '../helpers/streams';
import { uploadAcrossCustomerDelete } from '../helpers/upload';

const MB = 1024 * 1024;

/** A download read by hand: the first bytes, then a pause while the test acts, then the rest. */
function startDownload(port: number, path: string) {
  return new Promise<{ res: http.IncomingMessage; rest: () => Promise<{ complete: boolean; bytes: number; sha256: string }> }>(
    (resolve, reject) => {
      const req = http.get({ port, host: '127.0.0.1', path, agent: false }, (res) => {
        const hash = createHash('sha256');
        let bytes = 0;
        const ended = new Promise<boolean>((done) => {
          res.on('data', (chunk: Buffer) => {
            bytes += chunk.length;
            hash.update(chunk);
          });
          res.on('end', () => done(true));
          res.on('error', () => done(false));
          res.on('aborted', () => done(false));
        });
        res.pause();
        resolve({
          res,
          rest: async () => {
            res.resume();
            const complete = await ended;
            return { complete: complete && res.complete, bytes, sha256: hash.digest('hex') };
          },
        });
      });
      req.on('error', reject);
    },
  );
}

describe.each(['local', 's3'] as const)('concurrent deletes on %s', (storage) => {
  let t: TestApp;
  let port: number;
  let customerId: number;
  const { lines, sink } = logLines();

  beforeAll(async () => {
    t = await startTestApp({ storage, logger: createLogger('warn', sink) });
    port = await t.listen();
    customerId = (await t.request().post('/api/customers').send({ name: 'Racing SA' })).body.id;
  });
  afterAll(async () => {
    await t.close();
  });

  test('invariant: a download racing a delete streams the whole file or fails cleanly, never a truncated 200', async () => {
    const content = files.pdf(8 * MB);
    const doc = await t.request().post(`/api/customers/${customerId}/documents`).attach('file', content, 'big.pdf');
    const download = await startDownload(port, `${doc.headers.location}/download`);
    expect(download.res.statusCode).toBe(200);
    const promised = Number(download.res.headers['content-length']);

    expect((await t.request().delete(doc.headers.location)).status).toBe(204);
    await t.settle(); // the file is removed while the download is still under way
    expect(await t.services.deletions.pending()).toBe(0);

    const got = await download.rest();
    if (got.complete) {
      expect(got.bytes).toBe(promised);
      expect(got.sha256).toBe(sha256(content));
    } else {
      expect(got.bytes).toBeLessThan(promised); // cut off, visibly: the connection was reset, not ended
    }
    expect((await t.request().get(`${doc.headers.location}/download`)).status).toBe(404);
    expect(await t.storedFiles()).toEqual([]);
  });

  test.each([
    ['the document', 'DOCUMENT_NOT_FOUND'],
    ['its customer', 'CUSTOMER_NOT_FOUND'],
  ] as const)('a download when %s is deleted between its lookup and its file\'s opening: 404 %s, and no "missing" warning', async (deleted, code) => {
    const owner = (await t.request().post('/api/customers').send({ name: 'Short Lived KG' })).body.id;
    const doc = await t.request().post(`/api/customers/${owner}/documents`).attach('file', files.pdf(), 'brief.pdf');
    // The store holds the download's open until the delete is done and its file removed.
    const driver = t.storage.driver(storage);
    const get = driver.get;
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let opening!: () => void;
    const reached = new Promise<void>((resolve) => (opening = resolve));
    driver.get = async (...args) => {
      opening();
      await held;
      return get.apply(driver, args);
    };
    try {
      const downloading = t.request().get(`${doc.headers.location}/download`).then((res) => res);
      await reached;
      const gone = deleted === 'the document' ? doc.headers.location : `/api/customers/${owner}`;
      expect((await t.request().delete(gone)).status).toBe(204);
      await t.settle();
      release();
      const res = await downloading;
      expect([res.status, res.body.error.code]).toEqual([404, code]);
      // A file deleted on purpose is not reported to ops as lost.
      expect(lines.filter((line) => line.includes('the file of a document is missing'))).toEqual([]);
    } finally {
      driver.get = get;
    }
  });

  test('invariant: of two deletes of one document at once, one is 204 and the other 404; its file is gone, nothing else is touched', async () => {
    const keep = await t.request().post(`/api/customers/${customerId}/documents`).attach('file', files.pdf(), 'keep.pdf');
    const doc = await t.request().post(`/api/customers/${customerId}/documents`).attach('file', files.pdf(), 'twice.pdf');
    const statuses = (await Promise.all([t.request().delete(doc.headers.location), t.request().delete(doc.headers.location)]))
      .map((r) => r.status)
      .sort();
    expect(statuses).toEqual([204, 404]);
    await t.settle();
    expect(await t.storedFiles()).toHaveLength(1);
    expect((await t.request().get(`${keep.headers.location}/download`)).status).toBe(200);
    expect((await t.request().delete(keep.headers.location)).status).toBe(204);
    await t.settle();
  });

  test('invariant: an upload to a customer deleted while it streams is refused (404) and keeps nothing', async () => {
    const res = await uploadAcrossCustomerDelete(() => t.request(), port);
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('CUSTOMER_NOT_FOUND');
    await t.settle();
    expect(await t.storedFiles()).toEqual([]);
  });
});
