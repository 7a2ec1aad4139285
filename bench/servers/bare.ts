// The ceiling: a bare Node HTTP server that pipes a raw request body to disk while hashing it, and pipes a file back.
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

const dir = process.env.BENCH_DIR!;
http
  .createServer(async (req, res) => {
    if (req.method === 'POST') {
      const hash = createHash('sha256');
      const name = randomUUID();
      const hashing = new Transform({
        transform(chunk, _e, done) {
          hash.update(chunk);
          done(null, chunk);
        },
      });
      await pipeline(req, hashing, createWriteStream(path.join(dir, name), { flush: true }));
      res.writeHead(201, { 'Content-Type': 'application/json' }).end(JSON.stringify({ name, sha256: hash.digest('hex') }));
      return;
    }
    const file = path.join(dir, path.basename(req.url ?? ''));
    const size = await stat(file).then((s) => (s.isFile() ? s.size : undefined), () => undefined);
    if (size === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': size });
    await pipeline(createReadStream(file), res).catch(() => undefined);
  })
  .listen(Number(process.env.PORT), '127.0.0.1');
