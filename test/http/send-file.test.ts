import http from 'node:http';
import { Readable } from 'node:stream';
import express from 'express';
import { contentDisposition } from '../../src/http/content-disposition';
import { parseRange, sendFile } from '../../src/http/send-file';

describe('parseRange', () => {
  test.each([
    ['bytes=0-99', { start: 0, end: 99 }],
    ['bytes=100-', { start: 100 }],
    ['bytes=-500', { suffix: 500 }],
    ['bytes=-0', { suffix: 0 }],
    [' bytes=5-5 ', { start: 5, end: 5 }],
    [undefined, undefined],
    ['bytes=5-1', undefined],
    ['bytes=-', undefined],
    ['bytes=0-1,4-5', undefined],
    ['pages=1-2', undefined],
    ['bytes=a-b', undefined],
    // Past 2^53, beyond any file: held at 2^53 - 1, so the first is 416, the second reads to the end, the third
    // is the whole file, as for any position past the end.
    ['bytes=99999999999999999999-', { start: Number.MAX_SAFE_INTEGER }],
    ['bytes=0-99999999999999999999', { start: 0, end: Number.MAX_SAFE_INTEGER }],
    ['bytes=-99999999999999999999', { suffix: Number.MAX_SAFE_INTEGER }],
    ['bytes=99999999999999999999-99999999999999999998', undefined],
  ])('%j is %j', (header, range) => {
    expect(parseRange(header)).toEqual(range);
  });
});

describe('contentDisposition', () => {
  test('an ASCII name appears in both forms', () => {
    expect(contentDisposition('attachment', 'report.pdf')).toBe(`attachment; filename="report.pdf"; filename*=UTF-8''report.pdf`);
  });

  test('quotes, backslashes and non-Latin names are safe in the fallback and exact in filename*', () => {
    expect(contentDisposition('inline', 'a "quoted" \\ name.txt')).toBe(
      `inline; filename="a _quoted_ _ name.txt"; filename*=UTF-8''a%20%22quoted%22%20%5C%20name.txt`,
    );
    expect(contentDisposition('attachment', '契約書.pdf')).toBe(
      `attachment; filename="___.pdf"; filename*=UTF-8''%E5%A5%91%E7%B4%84%E6%9B%B8.pdf`,
    );
    // Fullwidth solidus and two-dot leader fold to "/" and "..": the fallback keeps no path.
    expect(contentDisposition('attachment', '‥／‥／.bashrc.txt')).toMatch(/^attachment; filename="\.\._\.\._\.bashrc\.txt"; /);
    // One placeholder per character, an emoji (two UTF-16 units) included.
    expect(contentDisposition('attachment', 'Plan 📄.pdf')).toBe(`attachment; filename="Plan _.pdf"; filename*=UTF-8''Plan%20%F0%9F%93%84.pdf`);
    expect(contentDisposition('attachment', "it's (50%).pdf")).toBe(
      `attachment; filename="it's (50_).pdf"; filename*=UTF-8''it%27s%20%2850%25%29.pdf`,
    );
  });
});

describe('sendFile when the store fails midway', () => {
  test('the connection is reset: the client never sees a complete response', async () => {
    const app = express();
    app.get('/file', (req, res) =>
      sendFile(req, res, { fileName: 'a.pdf', mimeType: 'application/pdf', etag: '"x"', disposition: 'attachment' }, async () => {
        let sent = 0;
        const body = new Readable({
          read() {
            if (sent >= 64 * 1024) return this.destroy(new Error('S3 connection reset'));
            sent += 16 * 1024;
            this.push(Buffer.alloc(16 * 1024, 1));
          },
        });
        return { body, size: 1024 * 1024 };
      }),
    );
    const server = app.listen(0);
    try {
      const port = (server.address() as { port: number }).port;
      const outcome = await new Promise<{ status: number; received: number; completed: boolean }>((resolve) => {
        http.get(`http://127.0.0.1:${port}/file`, (res) => {
          let received = 0;
          res.on('data', (c: Buffer) => (received += c.length));
          res.on('end', () => resolve({ status: res.statusCode!, received, completed: res.complete }));
          res.on('error', () => resolve({ status: res.statusCode!, received, completed: res.complete }));
        });
      });
      expect(outcome.status).toBe(200);
      expect(outcome.completed).toBe(false);
      expect(outcome.received).toBeLessThan(1024 * 1024);
    } finally {
      server.close();
    }
  });
});
