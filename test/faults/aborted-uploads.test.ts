import { startTestApp, type TestApp } from '../helpers/app';
import { metric } from '../helpers/metrics';
import { streamUpload } from '../helpers/upload';
import { eventually } from '../helpers/wait';

const MB = 1024 * 1024;

describe.each(['local', 's3'] as const)('aborted uploads on %s', (storage) => {
  let t: TestApp;
  let port: number;
  let customerId: number;

  beforeAll(async () => {
    t = await startTestApp({ storage, env: { MAX_UPLOAD_SIZE: '6mb' } });
    port = await t.listen();
    customerId = (await t.request().post('/api/customers').send({ name: 'Aborting Ltd' })).body.id;
  });
  afterAll(async () => {
    await t.close();
  });

  const documents = async () => (await t.request().get(`/api/customers/${customerId}/documents`)).body.documents;
  const puts = (outcome: string) => metric(t, `storage_operation_duration_seconds_count{storage="${storage}",operation="put",outcome="${outcome}"}`);
  /** The store did nothing wrong: the client's doing is counted as a cancelled call, never as the store's error. */
  const expectOneMoreCancelledPut = async (before: number | undefined) => {
    await eventually(async () => (await puts('cancelled')) === (before ?? 0) + 1, 5_000, 'one more cancelled put');
    expect(await puts('error')).toBeUndefined();
    expect(await metric(t, `storage_operation_errors_total{storage="${storage}",operation="put"}`)).toBeUndefined();
  };

  test('invariant: a file that crosses MAX_UPLOAD_SIZE midway is refused at once (413), the rest is never read, nothing is kept', async () => {
    const before = await t.storedFiles();
    const cancelled = await puts('cancelled');
    // No Content-Length (chunked), so only the bytes themselves can show the file is too large.
    const upload = streamUpload({ port, path: `/api/customers/${customerId}/documents`, size: 200 * MB });
    const res = await upload.response;
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('FILE_TOO_LARGE');
    expect(res.headers.connection).toBe('close');
    // The server stopped reading at the limit: what the client got out is the limit plus the sockets' buffers,
    // not the 200 MB it meant to send.
    expect(upload.sent()).toBeLessThan(40 * MB);
    upload.abort();
    await eventually(async () => JSON.stringify(await t.storedFiles()) === JSON.stringify(before));
    expect(await documents()).toEqual([]);
    await expectOneMoreCancelledPut(cancelled);
  });

  test('invariant: a client that disconnects mid-upload leaves no row, no stored file, no temporary file, no multipart upload', async () => {
    const before = await t.storedFiles();
    const cancelled = await puts('cancelled');
    const upload = streamUpload({ port, path: `/api/customers/${customerId}/documents`, size: 5 * MB, chunkSize: 256 * 1024 });
    await upload.reached(3 * MB);
    upload.pause();
    // Midway indeed: the upload is in a temporary file by now (on S3, the copy kept for a fallback).
    await eventually(async () => (await t.storedFiles()).some((f) => f.startsWith('.tmp/')));
    upload.abort();
    await expect(upload.response).rejects.toThrow();
    await eventually(async () => JSON.stringify(await t.storedFiles()) === JSON.stringify(before));
    expect(await documents()).toEqual([]);
    await expectOneMoreCancelledPut(cancelled);
  });
});
