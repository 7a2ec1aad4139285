import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config';
import { clientErrorHandler } from '../../src/http/client-error';
import { type RunningService, startService } from '../../src/server';
import { createLogger } from '../../src/logger';
import { logLines } from '../helpers/logs';
import { createTestDb, type TestDb } from '../helpers/db';

/**
 * Sends raw bytes (and with `halfClose`, ends its side of the connection after them) and returns everything the
 * server answers before it closes the connection.
 */
function raw(port: number, request: string, halfClose = false): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => (halfClose ? socket.end(request) : socket.write(request)));
    let answer = '';
    socket.on('data', (c: Buffer) => (answer += c.toString()));
    socket.on('close', () => resolve(answer));
    socket.on('error', reject);
  });
}

describe('requests Node itself refuses or would answer without the API\'s JSON', () => {
  const { lines, sink } = logLines();
  let database: TestDb;
  let service: RunningService;
  beforeAll(async () => {
    database = await createTestDb();
    const config = loadConfig({ NODE_ENV: 'test', PORT: '0', UPLOAD_DIR: path.join(os.tmpdir(), `client-error-${process.pid}`) });
    service = await startService(config, createLogger('info', sink), { db: database.db });
  });
  afterAll(async () => {
    await service?.close();
    await database.close();
  });

  test.each([
    ['headers over 16 kB', `GET /api/customers HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431, 'HEADERS_TOO_LARGE'],
    ['a URL over 16 kB', `GET /api/customers?${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`, 431, 'HEADERS_TOO_LARGE'],
    ['an unknown method', 'FOO / HTTP/1.1\r\nHost: x\r\n\r\n', 400, 'BAD_REQUEST'],
    ['a body cut short by the client\'s half-close', 'POST /api/customers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"name":', 400, 'REQUEST_INCOMPLETE', true],
    ['broken chunked framing', 'POST /api/customers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 400, 'BAD_REQUEST'],
  ])('%s: the status Node would send, with the API\'s JSON error, and the connection closed', async (_name, request, status, code, halfClose = false) => {
    const answer = await raw(service.port, request, halfClose);
    const [head, body] = answer.split('\r\n\r\n');
    expect(head.split('\r\n')[0]).toMatch(new RegExp(`^HTTP/1.1 ${status} `));
    expect(head).toMatch(/\r\nContent-Type: application\/json; charset=utf-8\r\n/);
    expect(head).toMatch(/\r\nConnection: close/);
    expect(JSON.parse(body)).toEqual({ error: { code, message: expect.any(String) } });
    // This service has no CORS_ORIGINS: no browser may read it.
    expect(head).not.toMatch(/Access-Control/i);
    // A request id, as every answer has, and the service's line about it: what went wrong, never the bytes.
    const requestId = /\r\nX-Request-Id: ([0-9a-f-]{36})\r\n/.exec(head)?.[1];
    expect(requestId).toBeDefined();
    const line = lines.map((l) => JSON.parse(l)).find((l) => l.requestId === requestId);
    expect(line).toMatchObject({ level: 30, msg: 'request refused before routing', status, code, parserError: expect.stringMatching(/^HPE_/) });
    expect(JSON.stringify({ ...line, requestId: undefined })).not.toMatch(/aaaa|zz/);
  });

  test('an HTTP/1.1 request without Host: 400 with the API\'s JSON error, its request id and nosniff', async () => {
    const socket = net.connect(service.port, '127.0.0.1');
    let answer = '';
    let closed = false;
    socket.on('data', (c: Buffer) => (answer += c.toString()));
    socket.on('close', () => (closed = true));
    socket.write('GET /health HTTP/1.1\r\n\r\n');
    // The JSON answer keeps the connection open; Node's own answer (an empty body) closes it.
    for (let i = 0; i < 500 && !answer.includes('}') && !closed; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    socket.destroy();
    const [head, body] = answer.split('\r\n\r\n');
    expect(head.split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request');
    expect(head).toMatch(/\r\nX-Request-Id: [0-9a-f-]{36}\r\n/i);
    expect(head).toMatch(/\r\nX-Content-Type-Options: nosniff\r\n/i);
    expect(JSON.parse(body)).toEqual({ error: { code: 'BAD_REQUEST', message: expect.stringMatching(/Host/) } });
    // HTTP/1.0 never required it.
    expect(await raw(service.port, 'GET /health HTTP/1.0\r\n\r\n')).toMatch(/^HTTP\/1.1 200 /);
  });

  test('on a connection kept alive after an earlier request, the bad request still gets its answer', async () => {
    const socket = net.connect(service.port, '127.0.0.1');
    let answer = '';
    socket.on('data', (c: Buffer) => (answer += c.toString()));
    const closed = new Promise((resolve) => socket.on('close', resolve));
    socket.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
    while (!answer.includes('"status"')) await new Promise((resolve) => setTimeout(resolve, 10));
    socket.write(`GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    await closed;
    expect(answer).toMatch(/^HTTP\/1.1 200 /);
    expect(answer).toMatch(/}HTTP\/1.1 431 Request Header Fields Too Large\r\n/);
    expect(answer).toContain('"code":"HEADERS_TOO_LARGE"');
  });

  test('an Expect other than 100-continue: 417 EXPECTATION_FAILED as JSON, with its request id; 100-continue still works', async () => {
    const post = (expectation: string, version = '1.1') =>
      raw(
        service.port,
        `POST /api/customers HTTP/${version}\r\nHost: x\r\nExpect: ${expectation}\r\nContent-Type: application/json\r\n` +
          'Content-Length: 15\r\nConnection: close\r\n\r\n{"name":"Acme"}',
      );
    const [head, body] = (await post('foo')).split('\r\n\r\n');
    expect(head.split('\r\n')[0]).toBe('HTTP/1.1 417 Expectation Failed');
    expect(head).toMatch(/\r\nX-Request-Id: [0-9a-f-]{36}\r\n/i);
    expect(JSON.parse(body)).toEqual({ error: { code: 'EXPECTATION_FAILED', message: expect.stringContaining('100-continue') } });
    expect(await post('100-continue')).toMatch(/^HTTP\/1.1 100 Continue\r\n\r\nHTTP\/1.1 201 /);
    // Node's rule, not another: 100-continue among other expectations is met; HTTP/1.0 has no Expect.
    expect(await post('100-continue, foo')).toMatch(/^HTTP\/1.1 100 Continue\r\n\r\nHTTP\/1.1 201 /);
    expect(await post('foo', '1.0')).toMatch(/^HTTP\/1.1 201 /);
  });

  test('CONNECT: 405 METHOD_NOT_ALLOWED as JSON and a log line, where Node would close the connection without a word', async () => {
    const answer = await raw(service.port, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n');
    const [head, body] = answer.split('\r\n\r\n');
    expect(head.split('\r\n')[0]).toBe('HTTP/1.1 405 Method Not Allowed');
    expect(head).toMatch(/\r\nAllow: GET, HEAD, POST, DELETE\r\n/);
    expect(JSON.parse(body)).toEqual({ error: { code: 'METHOD_NOT_ALLOWED', message: expect.stringContaining('CONNECT') } });
    const requestId = /\r\nX-Request-Id: ([0-9a-f-]{36})\r\n/.exec(head)?.[1];
    expect(lines.map((l) => JSON.parse(l)).find((l) => l.requestId === requestId)).toMatchObject({ msg: 'request refused before routing', status: 405 });
  });
});

describe('a refusal before Express, read by a browser on another origin', () => {
  const tooLarge = `GET /api/customers HTTP/1.1\r\nHost: x\r\nOrigin: https://crm.example.com\r\nAuthorization: Bearer ${'a'.repeat(20_000)}\r\n\r\n`;

  test.each([
    ['one origin', ['https://crm.example.com'], 'https://crm.example.com', true],
    ['any origin', ['*'], '*', false],
    ['several origins: none can be chosen without the request\'s own', ['https://a.example.com', 'https://b.example.com'], undefined, false],
  ])('CORS_ORIGINS with %s', async (_name, origins, allowed, varies) => {
    const server = http.createServer(() => undefined).on('clientError', clientErrorHandler(origins));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const [head, body] = (await raw((server.address() as net.AddressInfo).port, tooLarge)).split('\r\n\r\n');
      expect(head.split('\r\n')[0]).toBe('HTTP/1.1 431 Request Header Fields Too Large');
      const headers = new Map(head.split('\r\n').slice(1).map((line) => line.split(': ') as [string, string]));
      expect(headers.get('Access-Control-Allow-Origin')).toBe(allowed);
      expect(headers.get('Vary')).toBe(varies ? 'Origin' : undefined);
      // The request id the answer carries, readable by fetch() only when exposed.
      expect(headers.get('Access-Control-Expose-Headers')).toBe(allowed ? 'X-Request-Id' : undefined);
      expect(headers.get('X-Request-Id')).toMatch(/^[0-9a-f-]{36}$/);
      expect(JSON.parse(body).error.code).toBe('HEADERS_TOO_LARGE');
    } finally {
      server.close();
    }
  });
});

describe('headers that arrive too slowly', () => {
  test('408 REQUEST_TIMEOUT with the API\'s JSON error and a log line, the connection closed', async () => {
    const { lines, sink } = logLines();
    // The service's own headersTimeout is 66 s (past the keep-alive timeout of a proxy in front); a short one
    // here, with Node's check every 50 ms, so the test waits half a second rather than a minute.
    const server = http
      .createServer({ headersTimeout: 300, requestTimeout: 300, connectionsCheckingInterval: 50 }, (_req, res) => res.end('served'))
      .on('clientError', clientErrorHandler([], createLogger('info', sink)));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      // The request line and one header, and then nothing: the headers never end.
      const answer = await raw((server.address() as net.AddressInfo).port, 'GET /api/customers HTTP/1.1\r\nHost: x\r\n');
      const [head, body] = answer.split('\r\n\r\n');
      expect(head.split('\r\n')[0]).toBe('HTTP/1.1 408 Request Timeout');
      expect(head).toMatch(/\r\nConnection: close/);
      expect(JSON.parse(body)).toEqual({ error: { code: 'REQUEST_TIMEOUT', message: expect.stringMatching(/headers took too long/) } });
      const requestId = /\r\nX-Request-Id: ([0-9a-f-]{36})\r\n/.exec(head)?.[1];
      const line = lines.map((l) => JSON.parse(l)).find((l) => l.requestId === requestId);
      expect(line).toMatchObject({ level: 30, msg: 'request refused before routing', status: 408, code: 'REQUEST_TIMEOUT', parserError: 'ERR_HTTP_REQUEST_TIMEOUT' });
    } finally {
      server.close();
    }
  });
});
