import { startTestApp } from '../helpers/app';

describe('health and an unavailable database', () => {
  test('200 with the storage and database in use; 503 JSON everywhere once the database is gone', async () => {
    const t = await startTestApp({ storage: 's3' });
    try {
      const ok = await t.request().get('/health');
      expect(ok.status).toBe(200);
      expect(ok.body).toEqual({ status: 'ok', storage: 's3', database: t.database.kind });

      await t.database.db.close();
      const down = await t.request().get('/health');
      expect(down.status).toBe(503);
      expect(down.body).toMatchObject({ status: 'unavailable', error: { code: 'DATABASE_UNAVAILABLE' } });
      for (const res of [
        await t.request().get('/api/customers'),
        await t.request().post('/api/customers').send({ name: 'x' }),
        await t.request().get('/api/customers/1/documents/1/download'),
      ]) {
        expect(res.status).toBe(503);
        expect(res.body.error.code).toBe('DATABASE_UNAVAILABLE');
        expect(res.headers['retry-after']).toBe('5');
      }
    } finally {
      await t.close().catch(() => undefined);
    }
  });

  test('local storage is reported as local', async () => {
    const t = await startTestApp();
    try {
      expect((await t.request().get('/health')).body).toMatchObject({ status: 'ok', storage: 'local' });
    } finally {
      await t.close();
    }
  });
});
