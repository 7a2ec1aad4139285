import fs from 'node:fs/promises';
import path from 'node:path';
import SwaggerParser from '@apidevtools/swagger-parser';
import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import type { Express } from 'express';
import jwt from 'jsonwebtoken';
import type { Response, Test } from 'supertest';
import { openApiDocument } from '../../src/http/openapi';
import { startTestApp, type TestApp } from '../helpers/app';
import { files } from '../helpers/files';
import { asBuffer } from '../helpers/streams';

/**
 * Keeps src/http/openapi.ts true: the document is valid OpenAPI 3.1, its operations are exactly the app's routes,
 * and every response of every route, driven for real, has a documented status, content type and headers, and a JSON
 * body that validates against the documented schema (Ajv, JSON Schema 2020-12). The last test fails when a
 * documented response was never seen, so the document cannot promise what the service does not do either.
 */

type Schema = Record<string, unknown>;
interface HeaderObject {
  required?: boolean;
  schema?: Schema;
}
interface ResponseObject {
  content?: Record<string, { schema?: Schema }>;
  headers?: Record<string, HeaderObject>;
}
interface Operation {
  operationId: string;
  summary?: string;
  security?: Record<string, string[]>[];
  parameters?: { name: string; in: string; schema?: Schema }[];
  requestBody?: { content: Record<string, { schema?: Schema }> };
  responses: Record<string, ResponseObject>;
}
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;
type Method = (typeof METHODS)[number];
type PathItem = Partial<Record<Method, Operation>> & { parameters?: Operation['parameters'] };
interface Doc {
  openapi: string;
  security?: Record<string, string[]>[];
  paths: Record<string, PathItem>;
  components: { securitySchemes: Record<string, Record<string, unknown>> };
}

/** Responses that no test can provoke on purpose: a fault of the service itself. */
const NOT_PROVOKED = new Set(['500']);
const PUBLIC_OPERATIONS = ['getHealth', 'getReadiness', 'getOpenApiDocument'];
const TOKEN = 'a-test-token-0123456789';
const JWT_SECRET = 'a-jwt-secret-of-at-least-32-characters!';

const ajv = new Ajv2020({ strict: true, allErrors: true, allowUnionTypes: true });
addFormats(ajv);
const validators = new Map<object, ValidateFunction>();
function validatorOf(schema: Schema): ValidateFunction {
  let validate = validators.get(schema);
  if (!validate) {
    validate = ajv.compile(schema);
    validators.set(schema, validate);
  }
  return validate;
}

let doc: Doc;
/** `operationId status` of every response seen. */
const observed = new Set<string>();

beforeAll(async () => {
  // Dereferenced: every $ref replaced by what it points to, so a response's schema compiles on its own.
  doc = (await SwaggerParser.dereference(structuredClone(openApiDocument) as never)) as unknown as Doc;
});

const operations = () =>
  Object.entries(doc.paths).flatMap(([template, item]) =>
    METHODS.filter((m) => item[m]).map((method) => ({ template, method, op: item[method]! })),
  );

/** The templated path a concrete path matches: `/api/customers/7` → `/api/customers/{customerId}`. */
function templateOf(urlPath: string): string | undefined {
  const segments = urlPath.split('/');
  const matches = Object.keys(doc.paths).filter((template) => {
    const parts = template.split('/');
    return parts.length === segments.length && parts.every((p, i) => (/^\{[^}]+\}$/.test(p) ? segments[i] !== '' : p === segments[i]));
  });
  // A literal segment beats a parameter.
  return matches.sort((a, b) => (a.match(/\{/g)?.length ?? 0) - (b.match(/\{/g)?.length ?? 0))[0];
}

function parseMediaType(value: string) {
  const [essence, ...params] = value.split(';');
  return {
    type: essence.trim().toLowerCase(),
    params: Object.fromEntries(
      params
        .map((p) => p.split('=').map((s) => s.trim().toLowerCase()))
        .filter(([k]) => k)
        .map(([k, v = '']) => [k, v.replace(/^"(.*)"$/, '$1')]),
    ),
  };
}

/** Whether a response's Content-Type is one a documented media-type key allows (wildcards, and its parameters). */
function mediaTypeMatches(documented: string, actual: string): boolean {
  const want = parseMediaType(documented);
  const got = parseMediaType(actual);
  const [wantType, wantSub] = want.type.split('/');
  const [gotType, gotSub] = got.type.split('/');
  if (wantType !== '*' && (wantType !== gotType || (wantSub !== '*' && wantSub !== gotSub))) return false;
  return Object.entries(want.params).every(([k, v]) => got.params[k] === v);
}

const isJson = (mediaType: string) => /^application\/(.+\+)?json$/.test(parseMediaType(mediaType).type);

function headerValue(value: string, schema: Schema): unknown {
  return schema.type === 'integer' && /^\d+$/.test(value) ? Number(value) : value;
}

function fail(where: string, message: string, res: Response): never {
  const body = res.text ?? (Buffer.isBuffer(res.body) ? `<${res.body.length} bytes>` : JSON.stringify(res.body));
  throw new Error(`${where}: ${message}\nstatus ${res.status}, content-type ${res.headers['content-type']}, body ${String(body).slice(0, 500)}`);
}

/**
 * Checks a real response against the document: its operation exists, its status is documented for it, its
 * documented headers are there and valid, its Content-Type is documented and its JSON body valid. Returns the
 * response for further assertions.
 */
function check(res: Response): Response {
  const req = (res as unknown as { req: { method: string; path: string } }).req;
  const method = req.method.toLowerCase() as Method;
  const urlPath = req.path.split('?')[0];
  const template = templateOf(urlPath);
  const where = `${req.method} ${urlPath}`;
  if (!template) fail(where, 'no path of the document matches', res);
  const op = doc.paths[template][method];
  if (!op) fail(where, `the document has no ${req.method} operation for ${template}`, res);
  const documented = op.responses[String(res.status)];
  if (!documented) {
    fail(where, `${op.operationId} answered ${res.status}, not among its documented ${Object.keys(op.responses).join(', ')}`, res);
  }
  observed.add(`${op.operationId} ${res.status}`);

  for (const [name, definition] of Object.entries(documented.headers ?? {})) {
    const value = res.headers[name.toLowerCase()] as string | undefined;
    if (value === undefined) {
      if (definition.required) fail(where, `the documented header ${name} is missing`, res);
      continue;
    }
    if (definition.schema) {
      const validate = validatorOf(definition.schema);
      if (!validate(headerValue(value, definition.schema))) {
        fail(where, `header ${name}: ${JSON.stringify(value)} ${ajv.errorsText(validate.errors)}`, res);
      }
    }
  }

  const contentType = res.headers['content-type'] as string | undefined;
  if (!documented.content) {
    if (contentType !== undefined) fail(where, `a ${res.status} is documented without content, yet has Content-Type`, res);
    if (res.text) fail(where, `a ${res.status} is documented without content, yet has a body`, res);
    return res;
  }
  if (!contentType) fail(where, 'no Content-Type', res);
  const mediaType = Object.keys(documented.content).find((key) => mediaTypeMatches(key, contentType));
  if (!mediaType) fail(where, `Content-Type ${contentType} is not one of ${Object.keys(documented.content).join(', ')}`, res);
  if (method === 'head') {
    if (res.text) fail(where, 'a HEAD response has a body', res);
    return res;
  }
  const schema = documented.content[mediaType].schema;
  if (isJson(mediaType) && schema) {
    const validate = validatorOf(schema);
    if (!validate(res.body)) fail(where, `body does not match the schema: ${ajv.errorsText(validate.errors)}`, res);
  }
  return res;
}

/** The error code of a checked JSON error response. */
const codeOf = (res: Response) => (res.body as { error: { code: string } }).error.code;

describe('the OpenAPI document', () => {
  test('is a valid OpenAPI 3.1.0 document', async () => {
    const api = (await SwaggerParser.validate(structuredClone(openApiDocument) as never)) as unknown as Doc;
    expect(api.openapi).toBe('3.1.0');
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
  });

  test('every schema in it compiles as strict JSON Schema 2020-12', () => {
    const schemas: Schema[] = [];
    for (const { op, template } of operations()) {
      for (const p of [...(doc.paths[template].parameters ?? []), ...(op.parameters ?? [])]) if (p.schema) schemas.push(p.schema);
      for (const media of Object.values(op.requestBody?.content ?? {})) if (media.schema) schemas.push(media.schema);
      for (const r of Object.values(op.responses)) {
        for (const media of Object.values(r.content ?? {})) if (media.schema) schemas.push(media.schema);
        for (const h of Object.values(r.headers ?? {})) if (h.schema) schemas.push(h.schema);
      }
    }
    expect(schemas.length).toBeGreaterThan(50);
    for (const schema of schemas) expect(() => validatorOf(schema)).not.toThrow();
  });

  test('every operation has a unique operationId and a summary; /health, /ready, /openapi.json are public, the rest needs bearerAuth', () => {
    const ops = operations();
    const ids = ops.map(({ op }) => op.operationId);
    expect(new Set(ids).size).toBe(ids.length);
    for (const { op, template, method } of ops) {
      expect({ template, method, summary: typeof op.summary }).toEqual({ template, method, summary: 'string' });
      const security = op.security ?? doc.security;
      expect({ id: op.operationId, security }).toEqual({
        id: op.operationId,
        security: PUBLIC_OPERATIONS.includes(op.operationId) ? [] : [{ bearerAuth: [] }],
      });
    }
  });
});

/** Every method and path the app routes, walked from its router stacks: `GET /api/customers/{customerId}`. */
function routesOf(app: Express): string[] {
  interface Layer {
    rawPath?: unknown;
    route?: { path: unknown; methods: Record<string, boolean> };
    handle?: { stack?: Layer[] };
  }
  const join = (prefix: string, p: unknown) => {
    if (typeof p !== 'string') throw new Error(`a route or mount path that is not a string: ${String(p)}`);
    return `${prefix}/${p}`.replace(/\/+/g, '/').replace(/(.)\/$/, '$1');
  };
  const routes: string[] = [];
  const walk = (stack: Layer[], prefix: string) => {
    for (const layer of stack) {
      if (layer.route) {
        const full = join(prefix, layer.route.path).replace(/:(\w+)/g, '{$1}');
        for (const [m, on] of Object.entries(layer.route.methods)) if (on) routes.push(`${m === '_all' ? 'ALL' : m.toUpperCase()} ${full}`);
      } else if (layer.handle?.stack) {
        walk(layer.handle.stack, join(prefix, layer.rawPath ?? '/'));
      }
    }
  };
  walk((app as unknown as { router: { stack: Layer[] } }).router.stack, '');
  return routes.sort();
}

describe('every route answers as documented', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ env: { MAX_UPLOAD_SIZE: '64kb' } });
  });
  afterAll(() => t?.close());

  const createCustomer = async (name: string) => check(await t.request().post('/api/customers').send({ name })).body.id as number;
  const upload = (customerId: number | string, data: Buffer, filename: string, contentType?: string) =>
    t.request().post(`/api/customers/${customerId}/documents`).attach('file', data, { filename, contentType });

  test('the document lists exactly the routes of the app (HEAD on the file routes, which Express answers with their GET)', () => {
    const documented = operations()
      .filter(({ method }) => method !== 'head')
      .map(({ method, template }) => `${method.toUpperCase()} ${template}`)
      .sort();
    const routes = routesOf(t.app);
    expect(routes).toEqual(documented);
    for (const { template } of operations().filter(({ method }) => method === 'head')) {
      expect(routes).toContain(`GET ${template}`);
    }
    expect(operations().filter(({ method }) => method === 'head').map(({ template }) => template).sort()).toEqual([
      '/api/customers/{customerId}/documents/{documentId}/download',
      '/api/customers/{customerId}/documents/{documentId}/view',
    ]);
  });

  /** A JSON GET asked again with the ETag it gave: 304, documented, with the same ETag. */
  const expectNotModified = async (url: string, etag: string) => {
    expect(etag).toMatch(/^W\/"/);
    const again = check(await t.request().get(url).set('If-None-Match', etag));
    expect([again.status, again.headers.etag, again.headers['cache-control']]).toEqual([304, etag, 'private, no-cache']);
  };

  describe('system', () => {
    test('GET /health: 200', async () => {
      const res = check(await t.request().get('/health'));
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ status: 'ok', storage: 'local', database: t.database.kind });
    });

    test('GET /ready: 200', async () => {
      const res = check(await t.request().get('/ready'));
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ status: 'ready', checks: { database: 'ok', migrations: 'ok', storage: 'ok' } });
    });

    test('GET /metrics: 200 in the Prometheus text format', async () => {
      const res = check(await t.request().get('/metrics'));
      expect(res.status).toBe(200);
      expect(res.text).toContain('# TYPE http_requests_total counter');
    });

    test('GET /openapi.json: 200 with this very document', async () => {
      const res = check(await t.request().get('/openapi.json'));
      expect(res.status).toBe(200);
      expect(res.body).toEqual(JSON.parse(JSON.stringify(openApiDocument)));
    });
  });

  describe('customers', () => {
    test('POST /api/customers: 201 with Location, with and without an e-mail', async () => {
      const withEmail = check(await t.request().post('/api/customers').send({ name: 'Acme GmbH', email: 'office@acme.example' }));
      expect(withEmail.status).toBe(201);
      expect(withEmail.headers.location).toBe(`/api/customers/${withEmail.body.id}`);
      const without = check(await t.request().post('/api/customers').send({ name: 'Nomail Ltd' }));
      expect(without.status).toBe(201);
      expect(without.body.email).toBeNull();
    });

    test('POST /api/customers: 400 invalid, 400 not JSON, 413 too large, 415 another charset', async () => {
      expect(codeOf(check(await t.request().post('/api/customers').send({ name: '' })))).toBe('VALIDATION_FAILED');
      expect(codeOf(check(await t.request().post('/api/customers').send({})))).toBe('VALIDATION_FAILED');
      const broken = check(await t.request().post('/api/customers').set('Content-Type', 'application/json').send('{"name": '));
      expect([broken.status, codeOf(broken)]).toEqual([400, 'INVALID_JSON']);
      const large = check(await t.request().post('/api/customers').send({ name: 'x'.repeat(20_000) }));
      expect([large.status, codeOf(large)]).toEqual([413, 'BODY_TOO_LARGE']);
      const latin1 = check(
        await t.request().post('/api/customers').set('Content-Type', 'application/json; charset=latin1').send('{"name":"x"}'),
      );
      expect([latin1.status, codeOf(latin1)]).toEqual([415, 'UNSUPPORTED_CHARSET']);
    });

    test('GET /api/customers: 200, 304', async () => {
      const res = check(await t.request().get('/api/customers'));
      expect(res.status).toBe(200);
      expect(res.body.customers.length).toBeGreaterThan(0);
      await expectNotModified('/api/customers', res.headers.etag);
    });

    test('GET /api/customers/{customerId}: 200, 304, 400, 404', async () => {
      const id = await createCustomer('Single Customer');
      const res = check(await t.request().get(`/api/customers/${id}`));
      expect(res.status).toBe(200);
      await expectNotModified(`/api/customers/${id}`, res.headers.etag);
      expect(codeOf(check(await t.request().get('/api/customers/abc')))).toBe('INVALID_ID');
      expect(codeOf(check(await t.request().get('/api/customers/%E0')))).toBe('BAD_REQUEST');
      expect(codeOf(check(await t.request().get('/api/customers/999999')))).toBe('CUSTOMER_NOT_FOUND');
      expect(codeOf(check(await t.request().get('/api/customers/99999999999')))).toBe('CUSTOMER_NOT_FOUND');
    });

    test('DELETE /api/customers/{customerId}: 204 (documents and all), 400, 404', async () => {
      const id = await createCustomer('Leaving Soon');
      expect(check(await upload(id, files.pdf(), 'a.pdf', 'application/pdf')).status).toBe(201);
      expect(check(await t.request().delete(`/api/customers/${id}`)).status).toBe(204);
      expect(codeOf(check(await t.request().delete(`/api/customers/${id}`)))).toBe('CUSTOMER_NOT_FOUND');
      expect(codeOf(check(await t.request().delete('/api/customers/x1')))).toBe('INVALID_ID');
    });
  });

  describe('documents', () => {
    let customerId: number;
    let otherCustomerId: number;
    beforeAll(async () => {
      customerId = await createCustomer('Documents GmbH');
      otherCustomerId = await createCustomer('Other Ltd');
    });
    const documentsOf = (id: number | string = customerId) => `/api/customers/${id}/documents`;

    test('POST .../documents: 201 with every field and a Location', async () => {
      const res = check(
        await t
          .request()
          .post(documentsOf())
          .field('category', 'contracts')
          .field('description', 'Signed master agreement')
          .attach('file', files.pdf(), { filename: 'Vertrag März.pdf', contentType: 'application/pdf' }),
      );
      expect(res.status).toBe(201);
      expect(res.headers.location).toBe(`${documentsOf()}/${res.body.id}`);
      expect(res.body).toMatchObject({ fileName: 'Vertrag März.pdf', storage: 'local', pendingStorage: null, category: 'contracts' });
      const plain = check(await upload(customerId, files.text(), 'notes.txt', 'text/plain'));
      expect(plain.body).toMatchObject({ category: null, description: null });
    });

    test('POST .../documents: 400 for each malformed upload', async () => {
      const cases: [string, Test][] = [
        ['FILE_REQUIRED', t.request().post(documentsOf()).field('category', 'no file')],
        ['FILE_REQUIRED', t.request().post(documentsOf())],
        ['EMPTY_FILE', upload(customerId, Buffer.alloc(0), 'empty.pdf', 'application/pdf')],
        [
          'INVALID_FIELD',
          t.request().post(documentsOf()).field('category', 'c'.repeat(101)).attach('file', files.pdf(), { filename: 'a.pdf', contentType: 'application/pdf' }),
        ],
        ['INVALID_UPLOAD', t.request().post(documentsOf()).attach('other', files.pdf(), { filename: 'a.pdf', contentType: 'application/pdf' })],
        [
          'INVALID_UPLOAD',
          t
            .request()
            .post(documentsOf())
            .attach('file', files.pdf(), { filename: 'a.pdf', contentType: 'application/pdf' })
            .attach('file', files.pdf(), { filename: 'b.pdf', contentType: 'application/pdf' }),
        ],
        [
          'INVALID_MULTIPART',
          t.request().post(documentsOf()).set('Content-Type', 'multipart/form-data; boundary=xyz').send('--xyz\r\nContent-Disposition: form-da'),
        ],
        ['INVALID_ID', upload('abc', files.pdf(), 'a.pdf', 'application/pdf')],
      ];
      for (const [code, request] of cases) {
        const res = check(await request);
        expect([res.status, codeOf(res)]).toEqual([400, code]);
      }
    });

    test('POST .../documents: 404 unknown customer, 413 over MAX_UPLOAD_SIZE, 415 type not allowed, not the content, or not a form', async () => {
      expect(codeOf(check(await upload(999999, files.pdf(), 'a.pdf', 'application/pdf')))).toBe('CUSTOMER_NOT_FOUND');
      const large = check(await upload(customerId, files.pdf(64 * 1024 + 1), 'big.pdf', 'application/pdf'));
      expect([large.status, codeOf(large)]).toEqual([413, 'FILE_TOO_LARGE']);
      const exe = check(await upload(customerId, files.exe(), 'setup.exe', 'application/x-msdownload'));
      expect([exe.status, codeOf(exe)]).toEqual([415, 'FILE_TYPE_NOT_ALLOWED']);
      const fake = check(await upload(customerId, files.text(), 'fake.pdf', 'application/pdf'));
      expect([fake.status, codeOf(fake)]).toEqual([415, 'FILE_CONTENT_MISMATCH']);
      const json = check(await t.request().post(documentsOf()).send({ file: 'not multipart' }));
      expect([json.status, codeOf(json)]).toEqual([415, 'UNSUPPORTED_MEDIA_TYPE']);
    });

    test('GET .../documents: 200, 304, 400, 404', async () => {
      const res = check(await t.request().get(documentsOf()));
      expect(res.status).toBe(200);
      expect(res.body.documents.length).toBeGreaterThan(0);
      await expectNotModified(documentsOf(), res.headers.etag);
      expect(codeOf(check(await t.request().get(documentsOf('abc'))))).toBe('INVALID_ID');
      expect(codeOf(check(await t.request().get(documentsOf(999999))))).toBe('CUSTOMER_NOT_FOUND');
    });

    test('GET .../documents/{documentId}: 200, 304, 400, 404 (another customer\'s document too)', async () => {
      const { id } = check(await upload(customerId, files.png(), 'photo.png', 'image/png')).body;
      const res = check(await t.request().get(`${documentsOf()}/${id}`));
      expect(res.status).toBe(200);
      await expectNotModified(`${documentsOf()}/${id}`, res.headers.etag);
      expect(codeOf(check(await t.request().get(`${documentsOf()}/abc`)))).toBe('INVALID_ID');
      expect(codeOf(check(await t.request().get(`${documentsOf(otherCustomerId)}/${id}`)))).toBe('DOCUMENT_NOT_FOUND');
      expect(codeOf(check(await t.request().get(`${documentsOf(999999)}/${id}`)))).toBe('CUSTOMER_NOT_FOUND');
    });

    test('DELETE .../documents/{documentId}: 204, 400, 404', async () => {
      const { id } = check(await upload(customerId, files.text('to delete'), 'gone.txt', 'text/plain')).body;
      expect(check(await t.request().delete(`${documentsOf()}/${id}`)).status).toBe(204);
      expect(codeOf(check(await t.request().delete(`${documentsOf()}/${id}`)))).toBe('DOCUMENT_NOT_FOUND');
      expect(codeOf(check(await t.request().delete(`${documentsOf()}/0x1`)))).toBe('INVALID_ID');
    });

    describe.each(['download', 'view'] as const)('GET and HEAD .../documents/{documentId}/%s', (which) => {
      const content = files.pdf(1000);
      let file: string;
      let etag: string;
      beforeAll(async () => {
        const doc = check(await upload(customerId, content, 'report.pdf', 'application/pdf')).body;
        file = `${documentsOf()}/${doc.id}/${which}`;
        etag = `"${doc.sha256}"`;
      });
      const get = (url = file) => t.request().get(url).parse(asBuffer);

      test('200 with the whole file, GET and HEAD', async () => {
        const res = check(await get());
        expect(res.status).toBe(200);
        expect(res.headers['content-type']).toBe('application/pdf');
        expect(res.headers['content-disposition']).toMatch(which === 'view' ? /^inline; / : /^attachment; /);
        expect((res.body as Buffer).equals(content)).toBe(true);
        const head = check(await t.request().head(file));
        expect([head.status, head.headers['content-length']]).toEqual([200, String(content.length)]);
      });

      test('206 for one range (and If-Range with the current ETag), GET and HEAD; a stale If-Range gets 200', async () => {
        const res = check(await get().set('Range', 'bytes=0-99'));
        expect([res.status, res.headers['content-range']]).toEqual([206, `bytes 0-99/${content.length}`]);
        expect((res.body as Buffer).equals(content.subarray(0, 100))).toBe(true);
        expect(check(await get().set('Range', 'bytes=-10').set('If-Range', etag)).status).toBe(206);
        expect(check(await get().set('Range', 'bytes=0-9').set('If-Range', '"older"')).status).toBe(200);
        expect(check(await t.request().head(file).set('Range', 'bytes=100-')).status).toBe(206);
      });

      test('304 for If-None-Match with the current ETag or *, GET and HEAD', async () => {
        const res = check(await t.request().get(file).set('If-None-Match', etag));
        expect([res.status, res.headers.etag]).toEqual([304, etag]);
        expect(check(await t.request().get(file).set('If-None-Match', '*')).status).toBe(304);
        expect(check(await t.request().head(file).set('If-None-Match', `W/${etag}`)).status).toBe(304);
      });

      test('412 for an If-Match without the current ETag, GET and HEAD', async () => {
        const res = check(await t.request().get(file).set('If-Match', '"another-version"'));
        expect([res.status, codeOf(res)]).toEqual([412, 'PRECONDITION_FAILED']);
        expect(check(await t.request().head(file).set('If-Match', `W/${etag}`)).status).toBe(412);
      });

      test('416 for a range past the end, GET and HEAD', async () => {
        const res = check(await t.request().get(file).set('Range', 'bytes=5000-'));
        expect([res.status, codeOf(res), res.headers['content-range']]).toEqual([416, 'RANGE_NOT_SATISFIABLE', `bytes */${content.length}`]);
        expect(check(await t.request().head(file).set('Range', 'bytes=1000-')).status).toBe(416);
      });

      test('400 and 404, GET and HEAD; 404 FILE_NOT_FOUND when the row is there and its file is not', async () => {
        expect(codeOf(check(await t.request().get(`${documentsOf()}/abc/${which}`)))).toBe('INVALID_ID');
        expect(check(await t.request().head(`${documentsOf('abc')}/1/${which}`)).status).toBe(400);
        expect(codeOf(check(await t.request().get(file.replace(documentsOf(), documentsOf(otherCustomerId)))))).toBe('DOCUMENT_NOT_FOUND');
        expect(codeOf(check(await t.request().get(`${documentsOf(999999)}/1/${which}`)))).toBe('CUSTOMER_NOT_FOUND');
        expect(check(await t.request().head(`${documentsOf()}/999999/${which}`)).status).toBe(404);

        const lost = check(await upload(customerId, files.pdf(), 'lost.pdf', 'application/pdf')).body;
        await fs.rm(path.join(t.uploadDir, lost.storedFileName));
        const missing = check(await t.request().get(`${documentsOf()}/${lost.id}/${which}`));
        expect([missing.status, codeOf(missing)]).toEqual([404, 'FILE_NOT_FOUND']);
      });

      test("409 FILE_AMBIGUOUS, GET and HEAD, for an old CRM row whose file_path names a file in a folder", async () => {
        const [{ id }] = await t.database.db.query<{ id: number }>(
          `INSERT INTO customer_documents (customer_id, file_name, file_path, file_type) VALUES ($1, 'a.txt', $2, 'text/plain') RETURNING id`,
          [customerId, `uploads/in-${which}/a-${which}.txt`],
        );
        await fs.mkdir(path.join(t.uploadDir, `in-${which}`));
        await fs.writeFile(path.join(t.uploadDir, `in-${which}`, `a-${which}.txt`), 'its own');
        await fs.writeFile(path.join(t.uploadDir, `a-${which}.txt`), "another's");
        const res = check(await t.request().get(`${documentsOf()}/${id}/${which}`));
        expect([res.status, codeOf(res)]).toEqual([409, 'FILE_AMBIGUOUS']);
        expect(check(await t.request().head(`${documentsOf()}/${id}/${which}`)).status).toBe(409);
      });
    });
  });
});

describe('with authentication on', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ env: { API_TOKENS: TOKEN, JWT_SECRET } });
  });
  afterAll(() => t?.close());

  /** A request for an operation, its path parameters filled with 1. */
  const requestFor = (method: Method, template: string) => {
    const url = template.replace(/\{[^}]+\}/g, '1');
    return t.request()[method as 'get'](url);
  };

  test('every protected operation answers 401 without a token, and with an invalid, expired or premature one', async () => {
    const now = Math.floor(Date.now() / 1000);
    const tokens: [string | undefined, string][] = [
      [undefined, 'AUTH_REQUIRED'],
      ['not-a-valid-token', 'INVALID_TOKEN'],
      [jwt.sign({ sub: 'u', exp: now - 60 }, JWT_SECRET, { algorithm: 'HS256' }), 'TOKEN_EXPIRED'],
      [jwt.sign({ sub: 'u', nbf: now + 60 }, JWT_SECRET, { algorithm: 'HS256' }), 'TOKEN_NOT_YET_VALID'],
    ];
    const protectedOps = operations().filter(({ op }) => !PUBLIC_OPERATIONS.includes(op.operationId));
    expect(protectedOps.length).toBe(13);
    for (const { method, template } of protectedOps) {
      for (const [token, code] of tokens) {
        const req = requestFor(method, template);
        if (token) req.set('Authorization', `Bearer ${token}`);
        const res = check(await req);
        expect({ template, method, status: res.status }).toEqual({ template, method, status: 401 });
        if (method !== 'head') expect(codeOf(res)).toBe(code);
      }
    }
  });

  test('/health, /ready and /openapi.json need no token; an API token or a JWT opens the rest', async () => {
    for (const url of ['/health', '/ready', '/openapi.json']) expect(check(await t.request().get(url)).status).toBe(200);
    expect(check(await t.request().get('/metrics').set('Authorization', `Bearer ${TOKEN}`)).status).toBe(200);
    const token = jwt.sign({ sub: 'u' }, JWT_SECRET, { algorithm: 'HS256', expiresIn: 60 });
    expect(check(await t.request().get('/api/customers').set('Authorization', `Bearer ${token}`)).status).toBe(200);
  });
});

describe('with S3 down', () => {
  test('downloads and views of S3 documents answer 503 STORAGE_UNAVAILABLE with Retry-After; /ready is degraded; uploads are kept locally, pending S3', async () => {
    const t = await startTestApp({ storage: 's3' });
    try {
      const customerId = check(await t.request().post('/api/customers').send({ name: 'Cloudy GmbH' })).body.id;
      const base = `/api/customers/${customerId}/documents`;
      const doc = check(await t.request().post(base).attach('file', files.pdf(), { filename: 'a.pdf', contentType: 'application/pdf' })).body;
      expect(doc.storage).toBe('s3');
      await t.s3!.down();

      // Uploads are kept on local disk meanwhile (S3_FALLBACK=local): degraded, still ready.
      const ready = check(await t.request().get('/ready'));
      expect([ready.status, ready.body.checks.storage]).toEqual([200, 'degraded']);

      for (const which of ['download', 'view']) {
        const res = check(await t.request().get(`${base}/${doc.id}/${which}`));
        expect([res.status, codeOf(res)]).toEqual([503, 'STORAGE_UNAVAILABLE']);
        expect(check(await t.request().head(`${base}/${doc.id}/${which}`)).status).toBe(503);
      }

      const kept = check(await t.request().post(base).attach('file', files.pdf(), { filename: 'b.pdf', contentType: 'application/pdf' }));
      expect(kept.status).toBe(201);
      expect(kept.body).toMatchObject({ storage: 'local', pendingStorage: 's3' });
      const listed = check(await t.request().get(base));
      expect(listed.body.documents).toContainEqual(kept.body);
      expect(check(await t.request().get(`${base}/${kept.body.id}`)).body).toEqual(kept.body);
      await t.s3!.up();
    } finally {
      await t.close();
    }
  }, 60_000);

  test('with S3_FALLBACK=fail /ready answers 503 and an upload 503 STORAGE_UNAVAILABLE', async () => {
    const t = await startTestApp({ storage: 's3', env: { S3_FALLBACK: 'fail' } });
    try {
      const customerId = check(await t.request().post('/api/customers').send({ name: 'Strict AG' })).body.id;
      await t.s3!.down();
      const ready = check(await t.request().get('/ready'));
      expect(ready.status).toBe(503);
      expect(ready.body).toMatchObject({ status: 'unavailable', checks: { storage: 'failing' }, error: { code: 'NOT_READY' } });
      const res = check(
        await t.request().post(`/api/customers/${customerId}/documents`).attach('file', files.pdf(), { filename: 'a.pdf', contentType: 'application/pdf' }),
      );
      expect([res.status, codeOf(res)]).toEqual([503, 'STORAGE_UNAVAILABLE']);
      await t.s3!.up();
    } finally {
      await t.close();
    }
  }, 60_000);
});

describe('a body that stops coming', () => {
  test('the routes that read a body answer 408 REQUEST_TIMEOUT', async () => {
    // A short grace for the test: the body announces more than it sends, and the rest never comes.
    const t = await startTestApp({ bodyRate: { graceMs: 300, bytesPerSecond: 1_000_000 } });
    try {
      const customerId = (await t.request().post('/api/customers').send({ name: 'Stalled Ltd' })).body.id;
      const customer = check(
        await t.request().post('/api/customers').set('Content-Type', 'application/json').set('Content-Length', '1000').send('{"name":'),
      );
      const form = '--x\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.7\n';
      const upload = check(
        await t
          .request()
          .post(`/api/customers/${customerId}/documents`)
          .set('Content-Type', 'multipart/form-data; boundary=x')
          .set('Content-Length', '100000')
          .send(form),
      );
      expect([customer.status, codeOf(customer), upload.status, codeOf(upload)]).toEqual([408, 'REQUEST_TIMEOUT', 408, 'REQUEST_TIMEOUT']);
    } finally {
      await t.close();
    }
  });
});

describe('with the database gone', () => {
  test('/health and /ready answer 503; every /api operation answers 503 DATABASE_UNAVAILABLE with Retry-After', async () => {
    const t = await startTestApp();
    try {
      await t.database.db.close();
      const health = check(await t.request().get('/health'));
      expect([health.status, health.body.error.code]).toEqual([503, 'DATABASE_UNAVAILABLE']);
      const ready = check(await t.request().get('/ready'));
      expect([ready.status, ready.body.checks.database]).toEqual([503, 'failing']);

      const apiOps = operations().filter(({ template }) => template.startsWith('/api/'));
      expect(apiOps.length).toBe(12);
      for (const { method, template, op } of apiOps) {
        const url = template.replace(/\{[^}]+\}/g, '1');
        let req = t.request()[method as 'get'](url);
        if (op.operationId === 'createCustomer') req = req.send({ name: 'Nobody' });
        if (op.operationId === 'uploadDocument') req = req.attach('file', files.pdf(), { filename: 'a.pdf', contentType: 'application/pdf' });
        const res = check(await req);
        expect({ id: op.operationId, status: res.status }).toEqual({ id: op.operationId, status: 503 });
        if (method !== 'head') expect(codeOf(res)).toBe('DATABASE_UNAVAILABLE');
      }
    } finally {
      await t.close().catch(() => undefined);
    }
  });
});

describe('coverage', () => {
  test('every documented response of every operation was seen above (except a 500, which no test provokes)', () => {
    const missing = operations().flatMap(({ op }) =>
      Object.keys(op.responses)
        .filter((status) => !NOT_PROVOKED.has(status) && !observed.has(`${op.operationId} ${status}`))
        .map((status) => `${op.operationId} ${status}`),
    );
    expect(missing).toEqual([]);
  });
});
