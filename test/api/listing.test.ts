import { LIST_PAGE } from '../../src/db';
import { listDocumentsPage } from '../../src/documents/repository';
import { startTestApp, type TestApp } from '../helpers/app';

/**
 * Listings of any length: read from the database in pages (keyset), and written to the client as they are read, so
 * a table of 300,000 customers is not held in memory at once. The order and the contents are those of one query.
 */
describe('listings in pages', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t?.close());

  const docIds = (body: { documents: { id: number }[] }) => body.documents.map((d) => d.id);

  test('a customer\'s documents, page by page: times tied to the microsecond, a microsecond apart, or missing, all in order', async () => {
    const [{ id: customer }] = await t.database.db.query<{ id: number }>("INSERT INTO customers (name) VALUES ('Pages') RETURNING id");
    // Times that a millisecond-precise cursor would confuse, ties, and the old CRM's rows without any.
    const times = [
      '2026-01-01 10:00:00.000100+00', '2026-01-01 10:00:00.000100+00', '2026-01-01 10:00:00.000700+00',
      '2026-01-01 10:00:00.000300+00', null, '2026-01-02 09:00:00+00', null, '2026-01-01 10:00:00.000100+00',
      '2025-12-31 23:59:59.999999+00', null,
    ];
    for (const [i, at] of times.entries()) {
      await t.database.db.query(
        'INSERT INTO customer_documents (customer_id, file_name, file_path, uploaded_at) VALUES ($1, $2, $3, $4::timestamptz)',
        [customer, `f${i}.pdf`, `f${i}.pdf`, at],
      );
    }
    const all = await t.database.db.query<{ id: number }>(
      'SELECT id FROM customer_documents WHERE customer_id = $1 ORDER BY uploaded_at DESC NULLS LAST, id DESC',
      [customer],
    );
    for (const size of [1, 2, 3, 4, 10]) {
      const ids: number[] = [];
      let after;
      do {
        const page = await listDocumentsPage(t.database.db, customer, after, size);
        ids.push(...page.rows.map((r) => Number(r.id)));
        after = page.next;
      } while (after);
      expect(ids).toEqual(all.map((r) => Number(r.id)));
    }
  });

  test('a listing longer than a page is streamed whole and in order; a short one keeps its ETag', async () => {
    await t.database.db.query("INSERT INTO customers (name) SELECT 'Customer ' || n FROM generate_series(1, 2500) AS n");
    const res = await t.request().get('/api/customers');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.headers.etag).toBeUndefined();
    const ids = (res.body.customers as { id: number }[]).map((c) => c.id);
    const expected = (await t.database.db.query<{ id: number }>('SELECT id FROM customers ORDER BY id')).map((r) => Number(r.id));
    expect(ids).toEqual(expected);
    expect(ids.length).toBeGreaterThan(2500);

    const [{ id: customer }] = await t.database.db.query<{ id: number }>("INSERT INTO customers (name) VALUES ('Many documents') RETURNING id");
    await t.database.db.query(
      `INSERT INTO customer_documents (customer_id, file_name, file_path, uploaded_at)
       SELECT $1, 'd' || n || '.pdf', 'd' || n || '.pdf', CASE WHEN n % 7 = 0 THEN NULL ELSE now() - make_interval(secs => n % 50) END
         FROM generate_series(1, 2100) AS n`,
      [customer],
    );
    const docs = await t.request().get(`/api/customers/${customer}/documents`);
    expect(docs.status).toBe(200);
    const expectedDocs = await t.database.db.query<{ id: number }>(
      'SELECT id FROM customer_documents WHERE customer_id = $1 ORDER BY uploaded_at DESC NULLS LAST, id DESC',
      [customer],
    );
    expect(docIds(docs.body)).toEqual(expectedDocs.map((r) => Number(r.id)));

    const [{ id: small }] = await t.database.db.query<{ id: number }>("INSERT INTO customers (name) VALUES ('Few documents') RETURNING id");
    const short = await t.request().get(`/api/customers/${small}/documents`);
    expect(short.body).toEqual({ documents: [] });
    expect(short.headers.etag).toBeDefined();
    expect((await t.request().get(`/api/customers/${small}/documents`).set('If-None-Match', short.headers.etag)).status).toBe(304);
    expect((await t.request().get('/api/customers/999999/documents')).body.error.code).toBe('CUSTOMER_NOT_FOUND');
  });

  test('a listing of exactly one page is answered whole, with its ETag; one more document and it is streamed', async () => {
    const [{ id: customer }] = await t.database.db.query<{ id: number }>("INSERT INTO customers (name) VALUES ('One page') RETURNING id");
    const add = (n: number) =>
      t.database.db.query(
        `INSERT INTO customer_documents (customer_id, file_name, file_path, uploaded_at)
         SELECT $1, 'p' || n || '.pdf', 'p' || n || '.pdf', now() - make_interval(secs => n) FROM generate_series(1, $2::int) AS n`,
        [customer, n],
      );
    await add(LIST_PAGE);
    const page = await t.request().get(`/api/customers/${customer}/documents`);
    expect(page.body.documents).toHaveLength(LIST_PAGE);
    expect(page.headers.etag).toBeDefined();
    expect(page.headers['content-length']).toBeDefined();
    await add(1);
    const more = await t.request().get(`/api/customers/${customer}/documents`);
    expect(more.body.documents).toHaveLength(LIST_PAGE + 1);
    expect(more.headers.etag).toBeUndefined();
    expect(more.headers['transfer-encoding']).toBe('chunked');
  });
});
