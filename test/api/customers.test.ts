import { files } from '../helpers/files';
import { startTestApp, type TestApp } from '../helpers/app';

describe.each(['local', 's3'] as const)('customers API on %s storage', (storage) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ storage });
  });
  afterAll(() => t?.close());

  test('create: 201 with the customer and a Location; get and list show it', async () => {
    const res = await t.request().post('/api/customers').send({ name: '  Müller & Söhne KG ', email: 'info@mueller.test' });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({ id: expect.any(Number), name: 'Müller & Söhne KG', email: 'info@mueller.test', createdAt: expect.any(String) });
    expect(res.headers.location).toBe(`/api/customers/${res.body.id}`);
    expect((await t.request().get(res.headers.location)).body).toEqual(res.body);
    const list = await t.request().get('/api/customers');
    expect(list.status).toBe(200);
    expect(list.body.customers).toContainEqual(res.body);
  });

  test('Location names the one canonical path, however the request spelled it', async () => {
    const customer = await t.request().post('/API/Customers/').send({ name: 'Spelled Oddly AG' });
    expect(customer.headers.location).toBe(`/api/customers/${customer.body.id}`);
    const doc = await t
      .request()
      .post(`/api/CUSTOMERS/000${customer.body.id}/Documents`)
      .attach('file', files.pdf(), { filename: 'a.pdf', contentType: 'application/pdf' });
    expect(doc.status).toBe(201);
    expect(doc.headers.location).toBe(`/api/customers/${customer.body.id}/documents/${doc.body.id}`);
    expect((await t.request().get(doc.headers.location)).body).toEqual(doc.body);
  });

  test("a JSON GET answers If-None-Match with 304 also with Cache-Control: no-cache, which fetch() adds to a request whose If-None-Match the frontend sets", async () => {
    const created = await t.request().post('/api/customers').send({ name: 'Cached & Co' });
    const path = created.headers.location;
    for (const url of [path, `${path}/documents`]) {
      const first = await t.request().get(url);
      const etag = first.headers.etag as string;
      expect(etag).toMatch(/^W\//);
      for (const tag of [etag, etag.slice(2), `"other", ${etag}`, '*']) {
        const again = await t.request().get(url).set({ 'If-None-Match': tag, 'Cache-Control': 'no-cache', Pragma: 'no-cache' });
        expect([url, tag, again.status]).toEqual([url, tag, 304]);
        expect(again.headers.etag).toBe(etag);
      }
      expect((await t.request().get(url).set({ 'If-None-Match': '"other"', 'Cache-Control': 'no-cache' })).status).toBe(200);
      expect((await t.request().head(url).set('If-None-Match', etag)).status).toBe(304);
    }
    // A response that is no 2xx is never a 304, whatever the client holds.
    expect((await t.request().get('/api/customers/999999').set('If-None-Match', '*')).status).toBe(404);
  });

  test('the name is limited in characters, as the database counts them: 255 emoji fit, 256 do not', async () => {
    const taken = await t.request().post('/api/customers').send({ name: '🏢'.repeat(255) });
    expect([taken.status, taken.body.name]).toEqual([201, '🏢'.repeat(255)]);
    const refused = await t.request().post('/api/customers').send({ name: '🏢'.repeat(256) });
    expect([refused.status, refused.body.error.message]).toEqual([400, 'name must be at most 255 characters']);
  });

  test('email is optional: absent, null or empty (what a form\'s empty input sends) means none; it is trimmed', async () => {
    for (const email of [undefined, null, '', '   ']) {
      const res = await t.request().post('/api/customers').send({ name: 'No Mail Ltd', email });
      expect([res.status, res.body.email]).toEqual([201, null]);
    }
    const spaced = await t.request().post('/api/customers').send({ name: 'Mail Ltd', email: ' office@mail.test ' });
    expect([spaced.status, spaced.body.email]).toEqual([201, 'office@mail.test']);
  });

  test.each([
    [{}, /name is required/],
    [{ name: '   ' }, /name must not be empty/],
    [{ name: 'x'.repeat(256) }, /at most 255/],
    [{ name: 'Ok', email: 'not-an-address' }, /email must be an e-mail address/],
    [{ name: null }, /name is required/],
    [{ name: 42 }, /name must be a string/],
    [{ name: ['Acme'] }, /name must be a string/],
    [{ name: 'Null\u0000Byte' }, /control characters/],
    [{ name: 'C1\u009bEscape' }, /control characters/],
    // A lone surrogate would be stored as U+FFFD: the name saved would not be the one sent.
    [{ name: 'Half \ud800 pair' }, /not valid Unicode/],
  ])('400 VALIDATION_FAILED for %j', async (body, message) => {
    const res = await t.request().post('/api/customers').send(body);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('VALIDATION_FAILED');
    expect(res.body.error.message).toMatch(message);
  });

  test('400 INVALID_JSON for a malformed body, 413 for a huge one', async () => {
    const bad = await t.request().post('/api/customers').set('Content-Type', 'application/json').send('{"name": ');
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('INVALID_JSON');
    expect(JSON.stringify(bad.body)).not.toMatch(/at .*\.js|stack/i);
    const huge = await t.request().post('/api/customers').send({ name: 'x', notes: 'y'.repeat(100_000) });
    expect(huge.status).toBe(413);
    expect(huge.body.error.code).toBe('BODY_TOO_LARGE');
  });

  test('415 UNSUPPORTED_MEDIA_TYPE for a customer sent as anything but JSON, rather than "name is required"', async () => {
    for (const [type, body] of [
      ['text/plain', '{"name":"Plain Text Ltd"}'],
      ['application/x-www-form-urlencoded', 'name=Form+Ltd'],
    ]) {
      const res = await t.request().post('/api/customers').set('Content-Type', type).send(body);
      expect(res.status).toBe(415);
      expect(res.body.error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    }
    // application/json with a charset still works.
    const withCharset = await t.request().post('/api/customers').set('Content-Type', 'application/json; charset=utf-8').send('{"name":"Charset Ltd"}');
    expect(withCharset.status).toBe(201);
  });

  test('404 CUSTOMER_NOT_FOUND for a customer that does not exist', async () => {
    for (const res of [
      await t.request().get('/api/customers/424242'),
      await t.request().delete('/api/customers/424242'),
      await t.request().get('/api/customers/424242/documents'),
    ]) {
      expect(res.status).toBe(404);
      expect(res.body.error.code).toBe('CUSTOMER_NOT_FOUND');
    }
  });

  test('delete: 204; the customer, its documents and their stored files are gone, other customers untouched', async () => {
    const keep = (await t.request().post('/api/customers').send({ name: 'Stays' })).body.id;
    const kept = await t.request().post(`/api/customers/${keep}/documents`).attach('file', files.pdf(), 'kept.pdf');
    const before = await t.storedFiles();

    const gone = (await t.request().post('/api/customers').send({ name: 'Leaves' })).body.id;
    const docs = [];
    for (let i = 0; i < 3; i++) {
      docs.push((await t.request().post(`/api/customers/${gone}/documents`).attach('file', files.pdf(), `doc${i}.pdf`)).headers.location);
    }
    expect((await t.storedFiles()).length).toBe(before.length + 3);

    expect((await t.request().delete(`/api/customers/${gone}`)).status).toBe(204);
    await t.settle(); // the files are removed right after commit, without keeping the client waiting
    expect(await t.storedFiles()).toEqual(before);
    expect((await t.request().get(`/api/customers/${gone}`)).status).toBe(404);
    for (const doc of docs) expect((await t.request().get(doc)).status).toBe(404);
    expect((await t.request().get(`${kept.headers.location}/download`)).status).toBe(200);
    expect((await t.request().delete(`/api/customers/${gone}`)).status).toBe(404);
  });

  test('an unknown route is a JSON 404', async () => {
    const res = await t.request().get('/api/nothing-here');
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('ROUTE_NOT_FOUND');
  });
});
