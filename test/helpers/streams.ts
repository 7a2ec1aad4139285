import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';

export const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

export const readAll = (stream: Readable) => buffer(stream);

/** `size` random bytes as a stream of `chunk`-sized pieces, the way a request body arrives. */
export function chunked(data: Buffer, chunk = 64 * 1024): Readable {
  let offset = 0;
  return new Readable({
    read() {
      if (offset >= data.length) return this.push(null);
      this.push(data.subarray(offset, (offset += chunk)));
    },
  });
}

export const random = (size: number) => randomBytes(size);

type Parser = Extract<Parameters<import('supertest').Test['parse']>[0], (res: never, cb: never) => void>;

/** A supertest parser that keeps any response body as raw bytes: `.parse(asBuffer)`. */
export const asBuffer: Parser = (res, done) => {
  // At parse time superagent hands over the raw response stream.
  const stream = res as unknown as NodeJS.ReadableStream;
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  stream.on('end', () => done(null, Buffer.concat(chunks)));
};

/** A supertest parser that hashes the response body as it streams, for a body too large to keep: `.parse(asSha256)`. */
export const asSha256: Parser = (res, done) => {
  const stream = res as unknown as NodeJS.ReadableStream;
  const hash = createHash('sha256');
  stream.on('data', (c: Buffer) => hash.update(c));
  stream.on('end', () => done(null, hash.digest('hex')));
};
