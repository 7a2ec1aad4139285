import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** Passes bytes through unchanged, counting and hashing them (SHA-256) on the way. */
export class Digest extends Transform {
  /** Not `size`: lib-storage reads a body's `size` as its total length, as it would a Blob's. */
  byteCount = 0;
  private readonly hash = createHash('sha256');

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.record(chunk);
    done(null, chunk);
  }

  /** Counts and hashes a chunk; subclasses that check what passes call it from their own _transform. */
  protected record(chunk: Buffer): void {
    this.byteCount += chunk.length;
    this.hash.update(chunk);
  }

  /** The hex SHA-256 of everything that passed; read once, after the stream has ended. */
  digest(): string {
    return this.hash.digest('hex');
  }
}

/** Reads `source` to its end: its size and SHA-256. */
export async function digestOf(source: NodeJS.ReadableStream): Promise<{ size: number; sha256: string }> {
  const digest = new Digest();
  await pipeline(source, digest, async function* (chunks: AsyncIterable<Buffer>) {
    for await (const _ of chunks); // drained: only the digest is wanted
  });
  return { size: digest.byteCount, sha256: digest.digest() };
}
