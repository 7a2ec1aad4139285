import bytes from 'bytes';
import type { TransformCallback } from 'node:stream';
import { BadRequestError, PayloadTooLargeError, UnsupportedMediaTypeError } from '../errors';
import { Digest } from './digest';
import { contentMatchesType, SNIFF_BYTES } from './file-types';

/**
 * Sits between the request and the storage driver and checks an upload while it streams, holding at most the
 * first SNIFF_BYTES: it counts and hashes every byte, refuses content that does not match the declared type
 * before any of it is passed on, and fails the moment the upload passes the size limit or turns out empty.
 * A failure here errors the stream, which makes the driver discard everything it received.
 */
export class UploadInspector extends Digest {
  private head: Buffer[] | undefined = [];
  private headBytes = 0;

  constructor(
    private readonly mimeType: string,
    private readonly maxBytes: number,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    if (this.byteCount + chunk.length > this.maxBytes) {
      return done(new PayloadTooLargeError(`The file is larger than the ${bytes.format(this.maxBytes)} allowed`));
    }
    this.record(chunk);
    if (!this.head) return done(null, chunk);
    this.head.push(chunk);
    this.headBytes += chunk.length;
    if (this.headBytes < SNIFF_BYTES) return done();
    this.releaseHead(done);
  }

  override _flush(done: TransformCallback): void {
    if (this.byteCount === 0) return done(new BadRequestError('EMPTY_FILE', 'The file is empty'));
    if (!this.head) return done();
    this.releaseHead(done);
  }

  /** Checks the first bytes against the declared type; from then on chunks pass straight through. */
  private releaseHead(done: TransformCallback): void {
    const head = Buffer.concat(this.head ?? []);
    this.head = undefined;
    if (!contentMatchesType(this.mimeType, head)) {
      return done(
        new UnsupportedMediaTypeError('FILE_CONTENT_MISMATCH', `The file's content is not of its declared type ${this.mimeType}`),
      );
    }
    done(null, head);
  }
}
