import jwt from 'jsonwebtoken';
import { startTestApp, type TestApp } from '../helpers/app';

const TOKEN = 'crm-frontend-token-0123456789';
const SECRET = 'a-jwt-secret-of-at-least-32-characters!';

describe('authentication', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ env: { API_TOKENS: `other-token-abcdefghijkl,${TOKEN}`, JWT_SECRET: SECRET } });
  });
  afterAll(() => t?.close());

  const get = (auth?: string) => {
    const req = t.request().get('/api/customers');
    return auth === undefined ? req : req.set('Authorization', auth);
  };
  const now = () => Math.floor(Date.now() / 1000);

  test('401 AUTH_REQUIRED without a bearer token, with WWW-Authenticate', async () => {
    for (const res of [await get(), await get(`Basic ${Buffer.from('a:b').toString('base64')}`), await get('Bearer')]) {
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe('AUTH_REQUIRED');
      expect(res.headers['www-authenticate']).toBe('Bearer');
    }
  });

  test('an API token is accepted; an unknown one is 401 INVALID_TOKEN', async () => {
    expect((await get(`Bearer ${TOKEN}`)).status).toBe(200);
    expect((await get(`bearer ${TOKEN}`)).status).toBe(200);
    const res = await get(`Bearer ${TOKEN}x`);
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('INVALID_TOKEN');
  });

  test('a JWT signed HS256 with JWT_SECRET is accepted', async () => {
    const token = jwt.sign({ sub: 'user-1' }, SECRET, { algorithm: 'HS256', expiresIn: 60 });
    expect((await get(`Bearer ${token}`)).status).toBe(200);
  });

  test("a JWT within 30 s of its times is accepted: the issuer's clock may differ a little from the service's", async () => {
    const justExpired = jwt.sign({ sub: 'u', exp: now() - 10 }, SECRET, { algorithm: 'HS256' });
    const almostValid = jwt.sign({ sub: 'u', nbf: now() + 10, exp: now() + 70 }, SECRET, { algorithm: 'HS256' });
    for (const token of [justExpired, almostValid]) expect((await get(`Bearer ${token}`)).status).toBe(200);
  });

  test('an expired JWT, one not valid yet, one with another secret or algorithm: 401', async () => {
    const expired = jwt.sign({ sub: 'u', exp: now() - 60 }, SECRET, { algorithm: 'HS256' });
    const early = jwt.sign({ sub: 'u', nbf: now() + 60 }, SECRET, { algorithm: 'HS256' });
    const forged = jwt.sign({ sub: 'u' }, 'another-secret-that-is-long-enough-too', { algorithm: 'HS256' });
    const hs512 = jwt.sign({ sub: 'u' }, SECRET, { algorithm: 'HS512' });
    const unsigned = jwt.sign({ sub: 'u' }, '', { algorithm: 'none' });
    expect((await get(`Bearer ${expired}`)).body.error.code).toBe('TOKEN_EXPIRED');
    expect((await get(`Bearer ${early}`)).body.error.code).toBe('TOKEN_NOT_YET_VALID');
    for (const token of [forged, hs512, unsigned]) {
      const res = await get(`Bearer ${token}`);
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe('INVALID_TOKEN');
    }
  });

  test('every route under /api is protected, /health is not', async () => {
    for (const res of [
      await t.request().post('/api/customers').send({ name: 'x' }),
      await t.request().get('/api/customers/1/documents/1/download'),
      await t.request().delete('/api/customers/1'),
    ]) {
      expect(res.status).toBe(401);
    }
    expect((await t.request().get('/health')).status).toBe(200);
  });
});

describe('JWT_AUDIENCE and JWT_ISSUER', () => {
  test('a JWT must carry the configured aud and iss; one signed for another purpose is 401 INVALID_TOKEN', async () => {
    const t = await startTestApp({ env: { JWT_SECRET: SECRET, JWT_AUDIENCE: 'crm-documents', JWT_ISSUER: 'crm' } });
    try {
      const sign = (claims: object) => jwt.sign({ sub: 'user-1', ...claims }, SECRET, { algorithm: 'HS256', expiresIn: 60 });
      const get = (token: string) => t.request().get('/api/customers').set('Authorization', `Bearer ${token}`);
      expect((await get(sign({ aud: 'crm-documents', iss: 'crm' }))).status).toBe(200);
      for (const claims of [{}, { aud: 'password-reset', iss: 'crm' }, { aud: 'crm-documents' }, { aud: 'crm-documents', iss: 'someone-else' }]) {
        const res = await get(sign(claims));
        expect(res.status).toBe(401);
        expect(res.body.error.code).toBe('INVALID_TOKEN');
      }
      // Out of its time too, a token for another purpose is invalid, not expired: refreshing it would not help.
      const now = Math.floor(Date.now() / 1000);
      const expired = { exp: now - 60 };
      const early = { nbf: now + 600, exp: now + 900 };
      const code = async (claims: object) =>
        (await get(jwt.sign({ sub: 'user-1', ...claims }, SECRET, { algorithm: 'HS256' }))).body.error.code;
      expect(await code({ aud: 'password-reset', iss: 'crm', ...expired })).toBe('INVALID_TOKEN');
      expect(await code({ aud: 'password-reset', iss: 'crm', ...early })).toBe('INVALID_TOKEN');
      expect(await code({ aud: 'crm-documents', iss: 'crm', ...expired })).toBe('TOKEN_EXPIRED');
      expect(await code({ aud: 'crm-documents', iss: 'crm', ...early })).toBe('TOKEN_NOT_YET_VALID');
    } finally {
      await t.close();
    }
  });
});

describe('CORS', () => {
  test('only the configured origins get CORS headers, and preflights pass without a token', async () => {
    const t = await startTestApp({ env: { CORS_ORIGINS: 'https://crm.example.com', API_TOKENS: TOKEN } });
    try {
      const pre = await t
        .request()
        .options('/api/customers/1/documents')
        .set('Origin', 'https://crm.example.com')
        .set('Access-Control-Request-Method', 'POST')
        .set('Access-Control-Request-Headers', 'authorization');
      expect(pre.status).toBe(204);
      expect(pre.headers['access-control-allow-origin']).toBe('https://crm.example.com');
      expect(pre.headers['access-control-allow-methods']).toBe('GET,HEAD,POST,DELETE');
      const res = await t.request().get('/api/customers').set('Origin', 'https://crm.example.com').set('Authorization', `Bearer ${TOKEN}`);
      expect(res.headers['access-control-allow-origin']).toBe('https://crm.example.com');
      expect(res.headers['access-control-expose-headers']?.split(',')).toEqual(
        expect.arrayContaining(['Content-Disposition', 'Retry-After', 'WWW-Authenticate']),
      );
      const other = await t.request().get('/api/customers').set('Origin', 'https://evil.example').set('Authorization', `Bearer ${TOKEN}`);
      expect(other.headers['access-control-allow-origin']).toBeUndefined();
    } finally {
      await t.close();
    }
  });

  test('without CORS_ORIGINS no CORS headers are sent', async () => {
    const t = await startTestApp();
    try {
      const res = await t.request().get('/api/customers').set('Origin', 'https://crm.example.com');
      expect(res.headers['access-control-allow-origin']).toBeUndefined();
      // An OPTIONS is then a method no route takes: the API's JSON 404, not Express's plain-text list of methods.
      for (const path of ['/api/customers', '/api/customers/1', '/ready']) {
        const options = await t.request().options(path).set('Origin', 'https://crm.example.com').set('Access-Control-Request-Method', 'GET');
        expect([options.status, options.headers['content-type'], options.body.error?.code]).toEqual([
          404,
          'application/json; charset=utf-8',
          'ROUTE_NOT_FOUND',
        ]);
        expect(options.headers['access-control-allow-origin']).toBeUndefined();
      }
    } finally {
      await t.close();
    }
  });
});
