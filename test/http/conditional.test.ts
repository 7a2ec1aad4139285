import express from 'express';
import supertest from 'supertest';
import { freshByETag } from '../../src/http/conditional';

/** The app's JSON 304s are tested on its routes (customers.test); this is what no route of its uses yet. */
describe("freshByETag leaves Express's own rule for what it does not change", () => {
  const app = express();
  // No ETags at all here: a response without one, as Express sends with this setting.
  app.set('etag', false);
  freshByETag(app);
  const modified = new Date(Date.UTC(2026, 0, 1));
  app.get('/dated', (_req, res) => void res.set('Last-Modified', modified.toUTCString()).send('dated'));
  app.get('/untagged', (_req, res) => void res.send('untagged'));

  test('If-Modified-Since against Last-Modified, without If-None-Match: 304 when not modified since', async () => {
    expect((await supertest(app).get('/dated').set('If-Modified-Since', new Date().toUTCString())).status).toBe(304);
    expect((await supertest(app).get('/dated').set('If-Modified-Since', new Date(Date.UTC(2025, 0, 1)).toUTCString())).status).toBe(200);
  });

  test('If-None-Match: * matches a response without an ETag', async () => {
    expect((await supertest(app).get('/untagged').set({ 'If-None-Match': '*', 'Cache-Control': 'no-cache' })).status).toBe(304);
  });
});
