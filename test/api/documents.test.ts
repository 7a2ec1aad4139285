import http from 'node:http';
import { s3KeyFor } from '../../src/documents/document';
import { files } from '../helpers/files';
import { startTestApp, type TestApp } from '../helpers/app';
import { asBuffer, sha256 } from '../helpers/streams';

const binary = (res: { body: unknown }) => res.body as Buffer;


describe.each(['local', 's3'] as const)('documents API on %s storage', (storage) => {
  let t: TestApp;
  let customerId: number;
  let otherCustomerId: number;

  beforeAll(async () => {
    t = await startTestApp({ storage, env: { MAX_UPLOAD_SIZE: '20mb' } });
    customerId = (await t.request().post('/api/customers').send({ name: 'Acme GmbH' })).body.id;
    otherCustomerId = (await t.request().post('/api/customers').send({ name: 'Other Ltd' })).body.id;
  });
  afterAll(() => t?.close());

  const upload = (data: Buffer, filename: string, contentType?: string, cid = customerId) =>
    t.request().post(`/api/customers/${cid}/documents`).attach('file', data, { filename, contentType });
  const download = (path: string) => t.request().get(path).parse(asBuffer);

  /** Asserts that a refused upload left storage exactly as it was. */
  async function expectNothingStored(action: () => Promise<unknown>) {
    const before = await t.storedFiles();
    await action();
    expect(await t.storedFiles()).toEqual(before);
  }

  describe('upload, list, get', () => {
    test('201 with the document and a Location, stored on the configured driver', async () => {
      const pdf = files.pdf();
      const res = await t
        .request()
        .post(`/api/customers/${customerId}/documents`)
        .field('category', 'contracts')
        .field('description', 'Signed master agreement')
        .attach('file', pdf, { filename: 'contract.pdf', contentType: 'application/pdf' });
      expect(res.status).toBe(201);
      expect(res.body).toEqual({
        id: expect.any(Number),
        customerId,
        fileName: 'contract.pdf',
        storedFileName: expect.stringMatching(/^[0-9a-f-]{36}\.pdf$/),
        mimeType: 'application/pdf',
        size: pdf.length,
        sha256: sha256(pdf),
        storage,
        pendingStorage: null,
        category: 'contracts',
        description: 'Signed master agreement',
        uploadedAt: expect.any(String),
      });
      expect(res.headers.location).toBe(`/api/customers/${customerId}/documents/${res.body.id}`);
      const got = await t.request().get(res.headers.location);
      expect(got.status).toBe(200);
      expect(got.body).toEqual(res.body);
    });

    test('the stored name is the server\'s, never the client\'s, and the file lands where the driver keeps it', async () => {
      const res = await upload(files.text(), '../../etc/passwd.txt', 'text/plain');
      expect(res.status).toBe(201);
      expect(res.body.fileName).toBe('passwd.txt');
      expect(res.body.storedFileName).not.toContain('passwd');
      const where = storage === 's3' ? `s3:customer-documents/${customerId}/${res.body.storedFileName}` : res.body.storedFileName;
      expect(await t.storedFiles()).toContain(where);
    });

    test('a list is newest first, and only the customer\'s own', async () => {
      const a = (await upload(files.text('a'), 'a.txt', 'text/plain')).body;
      const b = (await upload(files.text('b'), 'b.txt', 'text/plain')).body;
      await upload(files.text('other'), 'other.txt', 'text/plain', otherCustomerId);
      const res = await t.request().get(`/api/customers/${customerId}/documents`);
      expect(res.status).toBe(200);
      const ids = res.body.documents.map((d: { id: number }) => d.id);
      expect(ids.indexOf(b.id)).toBeLessThan(ids.indexOf(a.id));
      expect(res.body.documents.every((d: { customerId: number }) => d.customerId === customerId)).toBe(true);
    });

    test('a UTF-8 file name is kept exactly and offered as filename* with an ASCII fallback', async () => {
      const name = 'Angebot für Müller – 2026 (final).pdf';
      const res = await upload(files.pdf(), name, 'application/pdf');
      expect(res.body.fileName).toBe(name);
      const dl = await download(`${res.headers.location}/download`);
      expect(dl.headers['content-disposition']).toBe(
        `attachment; filename="Angebot fur Muller _ 2026 (final).pdf"; filename*=UTF-8''Angebot%20f%C3%BCr%20M%C3%BCller%20%E2%80%93%202026%20%28final%29.pdf`,
      );
    });

    test('a generic type from the browser is resolved from the extension, and CSV from Excel machines is CSV', async () => {
      const png = await upload(files.png(), 'scan.png', 'application/octet-stream');
      expect(png.body.mimeType).toBe('image/png');
      const csv = await upload(files.text('a,b\n1,2\n'), 'export.csv', 'application/vnd.ms-excel');
      expect(csv.status).toBe(201);
      expect(csv.body.mimeType).toBe('text/csv');
    });

    test('a file of several multipart parts streams through unchanged', async () => {
      const big = files.pdf(11 * 1024 * 1024 + 777);
      const res = await upload(big, 'scan-archive.pdf', 'application/pdf');
      expect(res.status).toBe(201);
      expect(res.body.sha256).toBe(sha256(big));
      const dl = await download(`${res.headers.location}/download`);
      expect(dl.status).toBe(200);
      expect(sha256(binary(dl))).toBe(sha256(big));
    });
  });

  describe('download and view', () => {
    let doc: { id: number; sha256: string };
    let path: string;
    const content = files.pdf(1000);

    beforeAll(async () => {
      const res = await upload(content, 'report.pdf', 'application/pdf');
      doc = res.body;
      path = res.headers.location;
    });

    test('the whole file, with type, length, disposition, strong ETag, ranges and no sniffing or scripts', async () => {
      const res = await download(`${path}/download`);
      expect(res.status).toBe(200);
      expect(binary(res).equals(content)).toBe(true);
      expect(res.headers).toMatchObject({
        'content-type': 'application/pdf',
        'content-length': String(content.length),
        'content-disposition': `attachment; filename="report.pdf"; filename*=UTF-8''report.pdf`,
        etag: `"${doc.sha256}"`,
        'accept-ranges': 'bytes',
        'x-content-type-options': 'nosniff',
        'cache-control': 'private, no-cache',
      });
      expect(res.headers['content-security-policy']).toMatch(/default-src 'none'.*; sandbox$/);
    });

    test('a range: 206 with exactly those bytes', async () => {
      const res = await download(`${path}/download`).set('Range', 'bytes=100-199');
      expect(res.status).toBe(206);
      expect(res.headers['content-range']).toBe(`bytes 100-199/${content.length}`);
      expect(res.headers['content-length']).toBe('100');
      expect(binary(res).equals(content.subarray(100, 200))).toBe(true);
    });

    test('an open-ended and a suffix range', async () => {
      const open = await download(`${path}/download`).set('Range', 'bytes=990-');
      expect(open.status).toBe(206);
      expect(binary(open).equals(content.subarray(990))).toBe(true);
      const suffix = await download(`${path}/download`).set('Range', 'bytes=-10');
      expect(suffix.status).toBe(206);
      expect(suffix.headers['content-range']).toBe(`bytes 990-999/1000`);
      expect(binary(suffix).equals(content.subarray(990))).toBe(true);
    });

    test('an unsatisfiable range: 416 with Content-Range bytes */size and a JSON error', async () => {
      const res = await t.request().get(`${path}/download`).set('Range', 'bytes=5000-6000');
      expect(res.status).toBe(416);
      expect(res.headers['content-range']).toBe(`bytes */${content.length}`);
      expect(res.body.error.code).toBe('RANGE_NOT_SATISFIABLE');
    });

    test("an error in place of the file (416, its file gone) carries none of the file's headers: a browser cannot revalidate the error into a 304", async () => {
      const unsatisfiable = await t.request().get(`${path}/download`).set('Range', 'bytes=5000-6000');
      expect(unsatisfiable.status).toBe(416);
      const lost = (await upload(files.pdf(500), 'lost.pdf', 'application/pdf')).body;
      const key = storage === 's3' ? s3KeyFor(t.config.storage.s3?.prefix, customerId, lost.storedFileName) : lost.storedFileName;
      await t.storage.primary.delete(key);
      const missing = await t.request().get(`/api/customers/${customerId}/documents/${lost.id}/view`);
      expect([missing.status, missing.body.error.code]).toEqual([404, 'FILE_NOT_FOUND']);
      for (const [res, etag] of [[unsatisfiable, doc.sha256], [missing, lost.sha256]] as const) {
        expect(res.headers.etag).not.toBe(`"${etag}"`);
        expect(res.headers['accept-ranges']).toBeUndefined();
        expect(res.headers['content-security-policy']).toBeUndefined();
        expect(res.headers['cache-control']).toBe('no-store');
      }
    });

    test('positions past 2^53: a last byte there reads to the end, a suffix that long is the whole file, a first byte there is 416', async () => {
      const huge = '99999999999999999999';
      for (const range of [`bytes=10-${huge}`, `bytes=-${huge}`]) {
        const res = await download(`${path}/download`).set('Range', range);
        const start = range.startsWith('bytes=10') ? 10 : 0;
        expect([res.status, res.headers['content-range']]).toEqual([206, `bytes ${start}-${content.length - 1}/${content.length}`]);
        expect(binary(res).equals(content.subarray(start))).toBe(true);
      }
      const past = await t.request().get(`${path}/download`).set('Range', `bytes=${huge}-`);
      expect([past.status, past.headers['content-range'], past.body.error.code]).toEqual([416, `bytes */${content.length}`, 'RANGE_NOT_SATISFIABLE']);
    });

    test('several ranges, or a malformed one, get the whole file', async () => {
      for (const range of ['bytes=0-1,5-6', 'bytes=9-3', 'items=0-5']) {
        const res = await download(`${path}/download`).set('Range', range);
        expect(res.status).toBe(200);
        expect(binary(res).length).toBe(content.length);
      }
    });

    test('If-None-Match with the current ETag: 304; with another: the file', async () => {
      const etag = `"${doc.sha256}"`;
      const cached = await t.request().get(`${path}/download`).set('If-None-Match', etag);
      expect(cached.status).toBe(304);
      expect(cached.headers.etag).toBe(etag);
      expect((await t.request().get(`${path}/download`).set('If-None-Match', `W/${etag}`)).status).toBe(304);
      expect((await download(`${path}/download`).set('If-None-Match', '"stale"')).status).toBe(200);
    });

    test('If-Match: the file (or its range) when one of the ETags is the current one, strongly compared; else 412 PRECONDITION_FAILED', async () => {
      const etag = `"${doc.sha256}"`;
      for (const header of [etag, `"other", ${etag}`, '*']) {
        expect((await download(`${path}/download`).set('If-Match', header)).status).toBe(200);
      }
      expect((await download(`${path}/download`).set('If-Match', etag).set('Range', 'bytes=0-9')).status).toBe(206);
      for (const header of ['"stale"', `W/${etag}`]) {
        const refused = await t.request().get(`${path}/download`).set('If-Match', header);
        expect(refused.status).toBe(412);
        expect(refused.body.error.code).toBe('PRECONDITION_FAILED');
        // Not the file's validators: a cache must not keep the refusal under the file's ETag.
        expect(refused.headers.etag).not.toBe(etag);
      }
    });

    test('If-None-Match: * matches any current file; HEAD answers the headers without a body', async () => {
      expect((await t.request().get(`${path}/download`).set('If-None-Match', '*')).status).toBe(304);
      const head = await t.request().head(`${path}/download`);
      expect(head.status).toBe(200);
      expect(head.headers['content-length']).toBe(String(content.length));
      expect(head.headers.etag).toBe(`"${doc.sha256}"`);
    });

    test('If-Range: the range when the ETag matches, the whole file when it does not', async () => {
      const same = await download(`${path}/download`).set('Range', 'bytes=0-9').set('If-Range', `"${doc.sha256}"`);
      expect(same.status).toBe(206);
      const changed = await download(`${path}/download`).set('Range', 'bytes=0-9').set('If-Range', '"older-version"');
      expect(changed.status).toBe(200);
      expect(binary(changed).length).toBe(content.length);
    });

    test('view: inline for PDF (without sandbox, which stops browser PDF viewers), images and text', async () => {
      const pdf = await download(`${path}/view`);
      expect(pdf.headers['content-disposition']).toMatch(/^inline; /);
      expect(pdf.headers['content-security-policy']).toBe("default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'");
      const png = await upload(files.png(), 'photo.png', 'image/png');
      const img = await download(`${png.headers.location}/view`);
      expect(img.headers['content-disposition']).toMatch(/^inline; /);
      expect(img.headers['content-security-policy']).toMatch(/; sandbox$/);
      const txt = await upload(files.text(), 'notes.txt', 'text/plain');
      expect((await download(`${txt.headers.location}/view`)).headers['content-disposition']).toMatch(/^inline; /);
    });

    test('text is served without a charset the service never checked: a Latin-1 file is not labelled UTF-8', async () => {
      const latin1 = Buffer.from('Grüße aus München\n', 'latin1');
      for (const [data, name, type] of [[latin1, 'notes.txt', 'text/plain'], [latin1, 'export.csv', 'text/csv']] as const) {
        const res = await upload(data, name, type);
        for (const route of ['view', 'download']) {
          const served = await download(`${res.headers.location}/${route}`);
          expect(served.headers['content-type']).toBe(type);
          expect(served.body).toEqual(latin1);
        }
      }
    });

    test('view: everything else stays an attachment', async () => {
      for (const [data, name, type] of [
        [files.docx(), 'offer.docx', 'application/vnd.openxmlformats-officedocument.wordprocessingml.document'],
        [files.text('a,b\n'), 'data.csv', 'text/csv'],
      ] as const) {
        const res = await upload(data, name, type);
        const view = await download(`${res.headers.location}/view`);
        expect(view.status).toBe(200);
        expect(view.headers['content-disposition']).toMatch(/^attachment; /);
        expect(view.headers['x-content-type-options']).toBe('nosniff');
        expect(view.headers['content-security-policy']).toMatch(/; sandbox$/);
      }
    });

    test('a document is reachable only through its own customer', async () => {
      const elsewhere = `/api/customers/${otherCustomerId}/documents/${doc.id}`;
      for (const res of [
        await t.request().get(elsewhere),
        await t.request().get(`${elsewhere}/download`),
        await t.request().get(`${elsewhere}/view`),
        await t.request().delete(elsewhere),
      ]) {
        expect(res.status).toBe(404);
        expect(res.body.error.code).toBe('DOCUMENT_NOT_FOUND');
      }
      expect((await download(`${path}/download`)).status).toBe(200);
    });
  });

  describe('delete', () => {
    test('204; the row and the stored file are gone; a second DELETE is 404', async () => {
      const before = await t.storedFiles();
      const res = await upload(files.pdf(), 'old-offer.pdf', 'application/pdf');
      expect((await t.storedFiles()).length).toBe(before.length + 1);
      const del = await t.request().delete(res.headers.location);
      expect(del.status).toBe(204);
      await t.settle(); // the file is removed right after commit, without keeping the client waiting
      expect(await t.storedFiles()).toEqual(before);
      expect((await t.request().get(res.headers.location)).status).toBe(404);
      expect((await t.request().get(`${res.headers.location}/download`)).status).toBe(404);
      const again = await t.request().delete(res.headers.location);
      expect(again.status).toBe(404);
      expect(again.body.error.code).toBe('DOCUMENT_NOT_FOUND');
    });
  });

  describe('refused uploads: a clear error, nothing stored', () => {
    test('404 for an unknown customer, whether the file is small, large (refused mid-stream), of the wrong type or missing', async () => {
      await expectNothingStored(async () => {
        for (const data of [files.pdf(), Buffer.concat([files.pdf(), Buffer.alloc(3 * 1024 * 1024, 7)])]) {
          const res = await upload(data, 'x.pdf', 'application/pdf', 999_999);
          expect(res.status).toBe(404);
          expect(res.body.error.code).toBe('CUSTOMER_NOT_FOUND');
        }
        // Whatever else is wrong with the file, the unknown customer is the answer (as when it was checked first).
        for (const [data, type] of [[Buffer.from('not a pdf at all'), 'application/pdf'], [Buffer.from('MZ'), 'application/x-msdownload']] as const) {
          const res = await upload(data, 'x.pdf', type, 999_999);
          expect(res.status).toBe(404);
          expect(res.body.error.code).toBe('CUSTOMER_NOT_FOUND');
        }
        const cut = await t
          .request()
          .post('/api/customers/999999/documents')
          .set('Content-Type', 'multipart/form-data; boundary=XYZ')
          .send('--XYZ\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.4 trunc');
        expect(cut.status).toBe(404);
        expect(cut.body.error.code).toBe('CUSTOMER_NOT_FOUND');
      });
      const form = await t.request().post('/api/customers/999999/documents').field('category', 'contracts');
      expect(form.status).toBe(404);
      expect(form.body.error.code).toBe('CUSTOMER_NOT_FOUND');
    });

    test('400 INVALID_UPLOAD, not FILE_REQUIRED, for a file named ".." or ".", or text in the field "file"', async () => {
      const before = await t.storedFiles();
      for (const disposition of ['filename=".."', 'filename="."', 'x="text, not a file"']) {
        const body = `--b\r\nContent-Disposition: form-data; name="file"; ${disposition}\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.4 x\r\n--b--\r\n`;
        const res = await t.request().post(`/api/customers/${customerId}/documents`).set('Content-Type', 'multipart/form-data; boundary=b').send(body);
        expect([disposition, res.status, res.body.error.code]).toEqual([disposition, 400, 'INVALID_UPLOAD']);
        expect(res.body.error.message).toContain('file name');
      }
      expect(await t.storedFiles()).toEqual(before);
    });

    test('400 for a form without a file, or no body at all', async () => {
      const form = await t.request().post(`/api/customers/${customerId}/documents`).field('category', 'contracts');
      expect(form.status).toBe(400);
      expect(form.body.error.code).toBe('FILE_REQUIRED');
      const empty = await t.request().post(`/api/customers/${customerId}/documents`);
      expect(empty.status).toBe(400);
      expect(empty.body.error.code).toBe('FILE_REQUIRED');
    });

    test('415 for a body that is not a form: JSON, or the file sent raw', async () => {
      await expectNothingStored(async () => {
        const json = await t.request().post(`/api/customers/${customerId}/documents`).send({ file: 'x' });
        expect(json.status).toBe(415);
        expect(json.body.error).toEqual({ code: 'UNSUPPORTED_MEDIA_TYPE', message: expect.stringContaining('multipart/form-data') });
        const raw = await t.request().post(`/api/customers/${customerId}/documents`).set('Content-Type', 'application/pdf').send(files.pdf());
        expect(raw.status).toBe(415);
        expect(raw.body.error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
      });
      // An unknown customer is still the answer first, as for every other upload.
      const unknown = await t.request().post('/api/customers/999999/documents').send({ file: 'x' });
      expect(unknown.status).toBe(404);
    });

    test('400 for an empty file', async () => {
      await expectNothingStored(async () => {
        const res = await upload(Buffer.alloc(0), 'empty.pdf', 'application/pdf');
        expect(res.status).toBe(400);
        expect(res.body.error.code).toBe('EMPTY_FILE');
      });
    });

    test('415 for a type outside the allow-list', async () => {
      await expectNothingStored(async () => {
        for (const [name, type] of [['page.html', 'text/html'], ['tool.exe', 'application/x-msdownload'], ['x.svg', 'image/svg+xml']]) {
          const res = await upload(Buffer.from('<html><script>alert(1)</script></html>'), name, type);
          expect(res.status).toBe(415);
          expect(res.body.error.code).toBe('FILE_TYPE_NOT_ALLOWED');
        }
      });
    });

    test('415 for an executable named invoice.pdf, or a binary named notes.txt', async () => {
      await expectNothingStored(async () => {
        const pdf = await upload(files.exe(), 'invoice.pdf', 'application/pdf');
        expect(pdf.status).toBe(415);
        expect(pdf.body.error.code).toBe('FILE_CONTENT_MISMATCH');
        const txt = await upload(files.exe(), 'notes.txt', 'text/plain');
        expect(txt.status).toBe(415);
        const png = await upload(files.pdf(), 'photo.png', 'image/png');
        expect(png.status).toBe(415);
      });
    });

    test('415 for a script named for what it is, whatever type the browser claims', async () => {
      await expectNothingStored(async () => {
        for (const [name, type] of [['invoice.bat', 'text/plain'], ['statement.html', 'application/pdf'], ['run.js', 'text/plain']]) {
          const res = await upload(Buffer.from('%PDF-1.4 <script>echo</script>'), name, type);
          expect(res.status).toBe(415);
          expect(res.body.error.code).toBe('FILE_TYPE_NOT_ALLOWED');
        }
      });
    });

    test('400 for a file in another field, or two files', async () => {
      await expectNothingStored(async () => {
        const other = await t.request().post(`/api/customers/${customerId}/documents`).attach('document', files.pdf(), 'a.pdf');
        expect(other.status).toBe(400);
        expect(other.body.error).toEqual({ code: 'INVALID_UPLOAD', message: 'Send the file in the form field "file", not "document"' });
        const two = await t
          .request()
          .post(`/api/customers/${customerId}/documents`)
          .attach('file', files.pdf(), 'a.pdf')
          .attach('file', files.pdf(), 'b.pdf');
        expect(two.status).toBe(400);
        expect(two.body.error).toEqual({ code: 'INVALID_UPLOAD', message: expect.stringContaining('more than one') });
      });
    });

    test('400 for a multipart body that ends midway, or has no boundary', async () => {
      await expectNothingStored(async () => {
        const cut = await t
          .request()
          .post(`/api/customers/${customerId}/documents`)
          .set('Content-Type', 'multipart/form-data; boundary=XYZ')
          .send('--XYZ\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.4 trunc');
        expect(cut.status).toBe(400);
        expect(cut.body.error.code).toBe('INVALID_MULTIPART');
        const noBoundary = await t
          .request()
          .post(`/api/customers/${customerId}/documents`)
          .set('Content-Type', 'multipart/form-data')
          .send('whatever');
        expect(noBoundary.status).toBe(400);
        expect(noBoundary.body.error.code).toBe('INVALID_MULTIPART');
      });
    });

    test('400 for a description that is too long, the file already streamed is removed', async () => {
      await expectNothingStored(async () => {
        const res = await t
          .request()
          .post(`/api/customers/${customerId}/documents`)
          .attach('file', files.pdf(), { filename: 'a.pdf', contentType: 'application/pdf' })
          .field('description', 'x'.repeat(2001));
        expect(res.status).toBe(400);
        expect(res.body.error.code).toBe('INVALID_FIELD');
      });
    });
  });

  test('text fields are limited in characters, not UTF-16 units: 100 emoji make a category, 101 do not', async () => {
    const send = (category: string) =>
      t.request().post(`/api/customers/${customerId}/documents`).field('category', category).attach('file', files.pdf(), { filename: 'a.pdf', contentType: 'application/pdf' });
    const taken = await send('📄'.repeat(100));
    expect([taken.status, taken.body.category]).toEqual([201, '📄'.repeat(100)]);
    await t.request().delete(`${taken.headers.location}`).expect(204);
    await t.settle(); // the file is removed after the answer
    await expectNothingStored(async () => {
      const refused = await send('📄'.repeat(101));
      expect([refused.status, refused.body.error.code]).toEqual([400, 'INVALID_FIELD']);
    });
  });

  test("a browser form's line breaks (\\r\\n, as it sends a <textarea>'s) count one character each: 2,000 characters with line breaks among them make a description", async () => {
    // What the frontend holds: 2,000 characters, nine of them \n. FormData sends each \n as \r\n.
    const typed = `${'x'.repeat(199)}\n`.repeat(10);
    expect(typed).toHaveLength(2000);
    const res = await t
      .request()
      .post(`/api/customers/${customerId}/documents`)
      .field('description', typed.replaceAll('\n', '\r\n').trimEnd() + 'y')
      .attach('file', files.pdf(), { filename: 'a.pdf', contentType: 'application/pdf' });
    expect([res.status, res.body.description]).toEqual([201, typed.trimEnd() + 'y']);
    await t.request().delete(res.headers.location).expect(204);
  });

  test('a name whose extension is unknown downloads with its type\'s extension, so it cannot run as a script', async () => {
    const res = await upload(files.text('Get-Process\n'), 'cleanup.ps1', 'text/plain');
    expect(res.status).toBe(201);
    expect(res.body.fileName).toBe('cleanup.ps1');
    const dl = await t.request().get(`${res.headers.location}/download`);
    expect(dl.headers['content-disposition']).toBe(`attachment; filename="cleanup.ps1.txt"; filename*=UTF-8''cleanup.ps1.txt`);
  });

  test('400, not 500, for a control character in a text field or a path with a broken escape', async () => {
    for (const [field, value] of [
      ['category', 'bad\u0000category'],
      ['category', 'bad\ncategory'],
      ['description', 'clears the screen \u001b[2J'],
      ['description', 'a C1 escape \u009b2J'],
    ]) {
      await expectNothingStored(async () => {
        const res = await t
          .request()
          .post(`/api/customers/${customerId}/documents`)
          .field(field, value)
          .attach('file', files.pdf(), { filename: 'a.pdf', contentType: 'application/pdf' });
        expect(res.status).toBe(400);
        expect(res.body.error.code).toBe('INVALID_FIELD');
        expect(res.body.error.message).toBe(`${field} must not contain control characters`);
      });
    }
    // A description keeps its line breaks and tabs; a line break is \n however the form sent it.
    const ok = await t
      .request()
      .post(`/api/customers/${customerId}/documents`)
      .field('description', 'line one\r\n\tline two\rthree\nfour')
      .attach('file', files.pdf(), { filename: 'a.pdf', contentType: 'application/pdf' });
    expect(ok.status).toBe(201);
    expect(ok.body.description).toBe('line one\n\tline two\nthree\nfour');
    for (const path of [`/api/customers/%E0%A4%A/documents`, `/api/customers/${customerId}/documents/%zz/download`]) {
      const res = await t.request().get(path);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('BAD_REQUEST');
    }
  });

  test('400 for ids that are not integers, 404 for ids no row can have', async () => {
    for (const path of [
      '/api/customers/abc',
      '/api/customers/1.5/documents',
      `/api/customers/${customerId}/documents/-1`,
      '/api/customers/0',
      `/api/customers/${customerId}/documents/000`,
    ]) {
      const res = await t.request().get(path);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('INVALID_ID');
    }
    const huge = await t.request().get(`/api/customers/${customerId}/documents/99999999999`);
    expect(huge.status).toBe(404);
    expect(huge.body.error.code).toBe('DOCUMENT_NOT_FOUND');
  });
});

describe('size limit', () => {
  test.each(['local', 's3'] as const)('413 on %s for a file over MAX_UPLOAD_SIZE, streamed or announced; nothing kept', async (storage) => {
    const t = await startTestApp({ storage, env: { MAX_UPLOAD_SIZE: '64kb' } });
    try {
      const { id } = (await t.request().post('/api/customers').send({ name: 'Big Files Inc' })).body;
      const at = (data: Buffer) =>
        t.request().post(`/api/customers/${id}/documents`).attach('file', data, { filename: 'big.pdf', contentType: 'application/pdf' });
      expect((await at(files.pdf(64 * 1024))).status).toBe(201);
      const before = await t.storedFiles();
      // Over the limit by a byte: refused while streaming.
      const streamed = await at(files.pdf(64 * 1024 + 1));
      expect(streamed.status).toBe(413);
      expect(streamed.body.error.code).toBe('FILE_TOO_LARGE');
      // Far over the limit: refused from Content-Length before the body is read. The client sends a few bytes of
      // the 100 MB it announces and no more, so only an answer that does not wait for the body can arrive.
      const server = t.app.listen(0);
      try {
        const announce = (customer: number) => new Promise<{ status: number; body: string }>((resolve, reject) => {
          const req = http.request(
            {
              port: (server.address() as { port: number }).port,
              method: 'POST',
              path: `/api/customers/${customer}/documents`,
              headers: { 'Content-Type': 'multipart/form-data; boundary=b', 'Content-Length': String(100 * 1024 * 1024) },
            },
            (res) => {
              let body = '';
              res.on('data', (c) => (body += c));
              res.on('end', () => {
                resolve({ status: res.statusCode!, body });
                req.destroy();
              });
            },
          );
          req.on('error', reject);
          req.write('--b\r\nContent-Disposition: form-data; name="file"; filename="big.pdf"\r\n\r\n%PDF-1.4');
        });
        const announced = await announce(id);
        expect(announced.status).toBe(413);
        expect(JSON.parse(announced.body).error.code).toBe('FILE_TOO_LARGE');
        // An unknown customer is the answer first, as for any other refused upload.
        const unknown = await announce(999_999);
        expect(unknown.status).toBe(404);
        expect(JSON.parse(unknown.body).error.code).toBe('CUSTOMER_NOT_FOUND');
      } finally {
        server.close();
      }
      expect(await t.storedFiles()).toEqual(before);
    } finally {
      await t.close();
    }
  });
});

describe('storage unavailable', () => {
  test('503 STORAGE_UNAVAILABLE when the upload directory cannot be written', async () => {
    const t = await startTestApp({ storage: 'local' });
    try {
      const { id } = (await t.request().post('/api/customers').send({ name: 'Disk Full Co' })).body;
      // UPLOAD_DIR replaced by a plain file: every write fails as on a broken volume.
      const fs = await import('node:fs/promises');
      await fs.rm(t.uploadDir, { recursive: true });
      await fs.writeFile(t.uploadDir, 'not a directory');
      const res = await t.request().post(`/api/customers/${id}/documents`).attach('file', files.pdf(), 'a.pdf');
      expect(res.status).toBe(503);
      expect(res.body.error.code).toBe('STORAGE_UNAVAILABLE');
      expect((await t.request().get(`/api/customers/${id}/documents`)).body.documents).toEqual([]);
    } finally {
      await t.close();
    }
  });
});
