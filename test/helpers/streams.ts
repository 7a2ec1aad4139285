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
