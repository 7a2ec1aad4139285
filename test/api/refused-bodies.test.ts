import http from 'node:http';
import { gzipSync } from 'node:zlib';
import { startTestApp, type TestApp } from '../helpers/app';
import { type ServerProcess, startServerProcess } from '../helpers/process';
import { createServiceEnv, type ServiceEnv } from '../helpers/service-env';

const MB = 1024 * 1024;
const TOKEN = 'crm-frontend-token-0123456789';

/**
 * A client that announces `total` bytes and goes on sending them whatever the server answers, as a careless or
 * hostile one would. Resolves once the connection is gone or everything was sent, with the answer and how much the
 * server took in the meantime.
 */
function pushBody(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string>,
  total: number,
  { chunked = false, prefix = '' } = {},
) {
  return new Promise<{ status: number; connection?: string; body: string; sent: number }>((resolve) => {
    let status = 0;
    let connection: string | undefined;
    let body = '';
    let sent = 0;
    let finished = false;
    let waiting: NodeJS.Timeout | undefined;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(waiting);
      req.destroy();
      resolve({ status, connection, body, sent });
    };
    // Without a Content-Length, Node sends the body chunked.
    const req = http.request({ port, host: '127.0.0.1', method, path, headers: chunked ? headers : { ...headers, 'Content-Length': String(total) } });
    let ended = false;
    let answered = false;
    req.on('response', (res) => {
      status = res.statusCode ?? 0;
      connection = res.headers.connection;
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => (ended ? finish() : (answered = true)));
    });
    req.on('error', finish);
    req.on('close', finish);
    const chunk = Buffer.alloc(64 * 1024, 'x');
    if (prefix) {
      req.write(prefix);
      sent += Buffer.byteLength(prefix);
    }
    const write = () => {
      while (!finished && sent < total) {
        const n = Math.min(chunk.length, total - sent);
        const ok = req.write(chunk.subarray(0, n));
        sent += n;
        if (!ok) return void req.once('drain', write);
      }
      // Everything went out: the server read it all. Report once its answer is in (a kept-alive connection does not
      // close), or after a while without one.
      if (!finished) {
        req.end();
        ended = true;
        if (answered) finish();
        else waiting = setTimeout(finish, 10_000);
      }
    };
    write();
  });
}

describe('a body refused before it is read is not read', () => {
  let t: TestApp;
  let port: number;
  let customerId: number;
  beforeAll(async () => {
    t = await startTestApp({ env: { API_TOKENS: TOKEN, MAX_UPLOAD_SIZE: '1mb' } });
    port = await t.listen();
    customerId = (await t.request().post('/api/customers').set('Authorization', `Bearer ${TOKEN}`).send({ name: 'Refusals Ltd' })).body.id;
  });
  afterAll(() => t?.close());

  const multipart = { 'Content-Type': 'multipart/form-data; boundary=b', Authorization: `Bearer ${TOKEN}` };
  test.each([
    ['no token', 'POST', () => `/api/customers/${customerId}/documents`, { 'Content-Type': 'multipart/form-data; boundary=b' }, 401, 'AUTH_REQUIRED'],
    ['too large by its Content-Length', 'POST', () => `/api/customers/${customerId}/documents`, multipart, 413, 'FILE_TOO_LARGE'],
    ['a compressed upload', 'POST', () => `/api/customers/${customerId}/documents`, { ...multipart, 'Content-Encoding': 'gzip' }, 415, 'UNSUPPORTED_ENCODING'],
    ['a bad id', 'POST', () => '/api/customers/abc/documents', multipart, 400, 'INVALID_ID'],
    ['no such route', 'PUT', () => `/api/customers/${customerId}/documents`, multipart, 404, 'ROUTE_NOT_FOUND'],
    ['a JSON body over its limit', 'POST', () => '/api/customers', { 'Content-Type': 'application/json', Authorization: `Bearer ${TOKEN}` }, 413, 'BODY_TOO_LARGE'],
  ])('%s: answered with Connection: close, and the connection ends long before the 200 MB announced', async (_name, method, path, headers, status, code) => {
    const res = await pushBody(port, method, path(), headers, 200 * MB);
    expect(res.status).toBe(status);
    expect(JSON.parse(res.body).error.code).toBe(code);
    expect(res.connection).toBe('close');
    // The server stopped reading: what got out is the sockets' buffers, not the 200 MB the client meant to send.
    expect(res.sent).toBeLessThan(40 * MB);
  });

  test('a chunked JSON body over its limit: 413 on the way, Connection: close, and the rest is not read', async () => {
    const json = { 'Content-Type': 'application/json', Authorization: `Bearer ${TOKEN}` };
    const res = await pushBody(port, 'POST', '/api/customers', json, 200 * MB, { chunked: true });
    expect(res.status).toBe(413);
    expect(JSON.parse(res.body).error.code).toBe('BODY_TOO_LARGE');
    expect(res.connection).toBe('close');
    expect(res.sent).toBeLessThan(40 * MB);
  });

  // Without a Content-Length, nothing says up front how long the body will go on. Each of these forms is refused on
  // the way: by the customer lookup, or once the body passes the largest file and its form (1 MB + 1 MB here).
  const file = (field: string) => `--b\r\nContent-Disposition: form-data; name="${field}"; filename="a.pdf"\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.4\n`;
  test.each([
    ['for an unknown customer, before the form reaches a file', () => '/api/customers/999999/documents', '', 404, 'CUSTOMER_NOT_FOUND'],
    ['that never reaches a boundary', () => `/api/customers/${customerId}/documents`, '', 413, 'FILE_TOO_LARGE'],
    ['with its file in another field', () => `/api/customers/${customerId}/documents`, file('other'), 413, 'FILE_TOO_LARGE'],
    ['with a file past the limit', () => `/api/customers/${customerId}/documents`, file('file'), 413, 'FILE_TOO_LARGE'],
  ])('a chunked upload %s: answered on the way, Connection: close, and the rest is not read', async (_name, path, prefix, status, code) => {
    const res = await pushBody(port, 'POST', path(), multipart, 200 * MB, { chunked: true, prefix });
    expect([res.status, JSON.parse(res.body).error.code, res.connection]).toEqual([status, code, 'close']);
    expect(res.sent).toBeLessThan(40 * MB);
    await t.settle();
    expect(await t.storedFiles()).toEqual([]);
  });

  test('a chunked JSON body within its limit is read as any other; broken JSON or broken UTF-8 is 400 INVALID_JSON', async () => {
    const send = (body: string | Buffer, { sized = false } = {}) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const headers = { 'Content-Type': 'application/json; charset=utf-8', Authorization: `Bearer ${TOKEN}` };
        const length = sized ? { 'Content-Length': String(Buffer.byteLength(body)) } : {};
        const req = http.request({ port, host: '127.0.0.1', method: 'POST', path: '/api/customers', headers: { ...headers, ...length } });
        req.on('response', (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        });
        req.on('error', reject);
        // Two writes, no length: chunked, split mid-character (ö is two bytes in UTF-8); or the same with a length.
        const bytes = Buffer.from(body);
        req.write(bytes.subarray(0, 15));
        req.end(bytes.subarray(15));
      });
    const created = await send('{"name":"Chunköd GmbH"}');
    expect(created.status).toBe(201);
    expect(JSON.parse(created.body).name).toBe('Chunköd GmbH');
    const broken = await send('{"name": "Half');
    expect(broken.status).toBe(400);
    expect(JSON.parse(broken.body).error.code).toBe('INVALID_JSON');
    // Broken UTF-8 is refused, sized or chunked, rather than stored as U+FFFD; a BOM is not broken.
    const stray = Buffer.concat([Buffer.from('{"name":"M'), Buffer.from([0xfc]), Buffer.from('ller GmbH"}')]);
    const sizedAndChunked = async (body: Buffer) =>
      (await Promise.all([send(body, { sized: true }), send(body)])).map((res) => ({ status: res.status, body: JSON.parse(res.body) }));
    for (const res of await sizedAndChunked(stray)) {
      expect([res.status, res.body.error?.code, res.body.error?.message]).toEqual([400, 'INVALID_JSON', 'The request body is not valid UTF-8']);
    }
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"name":"Bom AG"}')]);
    for (const res of await sizedAndChunked(bom)) expect([res.status, res.body.name]).toEqual([201, 'Bom AG']);
    // As with a Content-Length (express.json's strict mode): a body that is not an object or array is not JSON here.
    for (const body of ['"x"', 'null', ' 42', '   ']) {
      const chunked = await send(body);
      const sized = await t.request().post('/api/customers').set({ 'Content-Type': 'application/json', Authorization: `Bearer ${TOKEN}` }).send(body);
      expect([chunked.status, JSON.parse(chunked.body).error.code]).toEqual([400, 'INVALID_JSON']);
      expect([sized.status, sized.body.error.code]).toEqual([400, 'INVALID_JSON']);
    }
  });

  test('a gzip-compressed form within the limit: 415 UNSUPPORTED_ENCODING, and nothing is kept', async () => {
    const form = Buffer.from(
      '--b\r\nContent-Disposition: form-data; name="file"; filename="notes.txt"\r\nContent-Type: text/plain\r\n\r\n' +
        'hello\r\n--b--\r\n',
    );
    const auth = { Authorization: `Bearer ${TOKEN}` };
    const res = await t
      .request()
      .post(`/api/customers/${customerId}/documents`)
      .set({ ...auth, 'Content-Type': 'multipart/form-data; boundary=b', 'Content-Encoding': 'gzip' })
      .send(gzipSync(form));
    expect(res.status).toBe(415);
    expect(res.body.error.code).toBe('UNSUPPORTED_ENCODING');
    expect((await t.request().get(`/api/customers/${customerId}/documents`).set(auth)).body.documents).toEqual([]);
    // The same form uncompressed is taken: the refusal is the encoding's.
    const plain = await t.request().post(`/api/customers/${customerId}/documents`).set({ ...auth, 'Content-Type': 'multipart/form-data; boundary=b' }).send(form);
    expect(plain.status).toBe(201);
    await t.request().delete(`/api/customers/${customerId}/documents/${plain.body.id}`).set(auth).expect(204);
  });

  test('a refused request whose body was read, or that had none, keeps its connection for the next one', async () => {
    const res = await pushBody(port, 'POST', '/api/customers', { 'Content-Type': 'application/json', Authorization: `Bearer ${TOKEN}` }, 2);
    expect(res.status).toBe(400);
    expect(res.connection).toBe('keep-alive');
    // Answered while the request is still being dispatched, before Node marks it complete.
    for (const [path, status] of [['/no-such-route', 404], ['/api/customers/1', 401]] as const) {
      const bodiless = await pushBody(port, 'GET', path, {}, 0);
      expect(bodiless.status).toBe(status);
      expect(bodiless.connection).toBe('keep-alive');
    }
  });
});

/**
 * The service in a process of its own, as a browser meets it: a client still sending its body when the answer comes
 * must still read the answer. Closed outright, the connection was reset by the kernel under the body still arriving,
 * and fetch failed with EPIPE instead of showing the 401 or 413 (about half the time, and every time for a file well
 * past the limit).
 */
describe('a client still sending when its upload is refused reads the answer', () => {
  let env: ServiceEnv;
  let service: ServerProcess;
  let customerId: number;
  beforeAll(async () => {
    env = await createServiceEnv('local', { API_TOKENS: TOKEN, MAX_UPLOAD_SIZE: '2mb', LOG_LEVEL: 'warn' });
    service = await startServerProcess(env.env);
    const created = await fetch(`${service.url}/api/customers`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${TOKEN}` },
      body: '{"name":"Refused Ltd"}',
    });
    customerId = ((await created.json()) as { id: number }).id;
  }, 90_000); // a service process's start may take 60 s on a loaded machine (startServerProcess)
  afterAll(async () => {
    service?.kill('SIGKILL');
    await service?.exited;
    await env?.close();
  });

  const uploadWithFetch = async (token: string, customer: number, size: number, name: string) => {
    const form = new FormData();
    form.append('file', new Blob([Buffer.alloc(size, '%PDF-1.4\n')], { type: 'application/pdf' }), name);
    try {
      const res = await fetch(`${service.url}/api/customers/${customer}/documents`, { method: 'POST', headers: { Authorization: `Bearer ${token}` }, body: form });
      return `${res.status} ${((await res.json()) as { error: { code: string } }).error.code}`;
    } catch (err) {
      return `fetch failed: ${(err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message}`;
    }
  };

  test.each([
    ['a wrong token, 1 KB', 'wrong-token-wrong-token', () => customerId, 'a.pdf', 1024, 20, '401 INVALID_TOKEN'],
    ['a wrong token, 1.5 MB', 'wrong-token-wrong-token', () => customerId, 'a.pdf', 1.5 * MB, 10, '401 INVALID_TOKEN'],
    ['a file past the limit by its length (3 MB)', TOKEN, () => customerId, 'a.pdf', 3 * MB, 10, '413 FILE_TOO_LARGE'],
    ['an unknown customer, 1.5 MB', TOKEN, () => 999_999, 'a.pdf', 1.5 * MB, 10, '404 CUSTOMER_NOT_FOUND'],
    ['a type not allowed, 1.5 MB', TOKEN, () => customerId, 'page.html', 1.5 * MB, 10, '415 FILE_TYPE_NOT_ALLOWED'],
  ])('%s', async (_name, token, customer, name, size, times, answer) => {
    const answers: string[] = [];
    for (let i = 0; i < times; i++) answers.push(await uploadWithFetch(token, customer(), size, name));
    expect(answers).toEqual(Array(times).fill(answer));
  });
});
