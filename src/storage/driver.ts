import type { Readable } from 'node:stream';
import type { StorageName } from '../config';
import { AppError, BusyError, ServiceUnavailableError } from '../errors';

/**
 * A byte range to read. Both ends are inclusive, as in HTTP.
 * - `{ start }`: from start to the last byte; `{ start, end }`: end past the last byte is clamped to it.
 * - `{ suffix }`: the last `suffix` bytes; a suffix longer than the object means the whole object.
 */
export type ByteRange = { start: number; end?: number } | { suffix: number };

export interface StoredObject {
  readonly body: Readable;
  /** The size of the whole object, whatever range was read. */
  readonly size: number;
  /** The bytes `body` holds, resolved against `size`; undefined when body is the whole object. */
  readonly range?: { readonly start: number; readonly end: number };
}

/**
 * Where document bytes live. Keys are made by the server: segments separated by '/', none empty, none starting
 * with '.', no control characters (see assertValidKey). Every driver passes the same conformance suite
 * (test/storage/conformance.ts), against the real disk and a real S3 HTTP server.
 */
export interface StorageDriver {
  readonly name: StorageName;

  /**
   * Streams `body` to `key` and resolves once the whole object is stored durably. Nothing is visible at `key`
   * before that. When `body` errors (the client went away, a check on the upload failed) put rejects with the
   * body's own error; when the store fails it rejects with StorageUnavailableError. Either way nothing is left
   * behind: no object, no temporary file, no multipart upload. Replaces an object already at `key`.
   */
  put(key: string, body: Readable, options: { contentType: string }): Promise<void>;

  /**
   * Opens `key` for reading, whole or one range. Throws before it returns a stream: StorageNotFoundError when
   * the key is missing, RangeNotSatisfiableError (carrying the size) when the range starts at or past the end,
   * asks for a zero-length suffix, or the object is empty. `signal`: the reader has gone; a get still waiting (for
   * a connection to the store, under load) gives up its place at once and rejects with the signal's reason.
   */
  get(key: string, range?: ByteRange, options?: { signal?: AbortSignal }): Promise<StoredObject>;

  /** The object's size. Throws StorageNotFoundError when the key is missing. */
  stat(key: string): Promise<{ size: number }>;

  /** Removes `key`. Does not throw when it is already missing. */
  delete(key: string): Promise<void>;

  /** Resolves when the store can be reached and written to; StorageUnavailableError otherwise. For /ready. */
  check(): Promise<void>;
}

export class StorageNotFoundError extends AppError {
  constructor(readonly key: string, options?: { cause?: unknown }) {
    super('FILE_NOT_FOUND', 404, 'The stored file of this document is missing', options);
  }
}

export class RangeNotSatisfiableError extends AppError {
  constructor(readonly size: number) {
    super('RANGE_NOT_SATISFIABLE', 416, `The requested range is outside the file's ${size} bytes`, {
      headers: { 'Content-Range': `bytes */${size}` },
    });
  }
}

export class StorageUnavailableError extends ServiceUnavailableError {
  constructor(cause: unknown) {
    super('STORAGE_UNAVAILABLE', 'File storage is not available; try again shortly', { cause });
  }
}

/**
 * The store answered and refused this service (no such bucket, a wrong endpoint or region, a key it does not know,
 * a secret that does not sign: s3.ts's REFUSALS): a configuration to fix, not an outage to wait out. Requests see it
 * as STORAGE_UNAVAILABLE; the service refuses to start on it (storage/startup-check.ts).
 */
export class StorageRefusedError extends StorageUnavailableError {
  constructor(cause: unknown) {
    super(cause);
    this.message =
      'S3 refuses this service: check AWS_S3_BUCKET_NAME, AWS_REGION (or AWS_S3_ENDPOINT) and the credentials (S3_SETUP_GUIDE.md)';
  }
}

/**
 * The store is busy, not down: the room this service keeps for its work with the store (memory for upload parts,
 * connections for downloads) stayed taken for QUEUE_TIMEOUT. Nothing of the request was stored; it may be retried.
 */
export class StorageBusyError extends BusyError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('STORAGE_BUSY', message, options);
  }
}

/** A key no driver may use: a server bug or a corrupt row, never a client's doing. */
export class InvalidKeyError extends AppError {
  constructor(key: string) {
    super('INVALID_STORAGE_KEY', 500, `Invalid storage key ${JSON.stringify(key)}`);
  }
}

export function isValidKey(key: string): boolean {
  return (
    key.length > 0 &&
    Buffer.byteLength(key) <= 1024 &&
    !/[\x00-\x1f\x7f]/.test(key) &&
    key.split('/').every((segment) => segment.length > 0 && !segment.startsWith('.'))
  );
}

export function assertValidKey(key: string): void {
  if (!isValidKey(key)) throw new InvalidKeyError(key);
}

/** The inclusive byte positions `range` names in an object of `size` bytes, or undefined when unsatisfiable. */
export function resolveRange(range: ByteRange, size: number): { start: number; end: number } | undefined {
  if (size === 0) return undefined;
  if ('suffix' in range) {
    return range.suffix > 0 ? { start: Math.max(0, size - range.suffix), end: size - 1 } : undefined;
  }
  if (range.start >= size) return undefined;
  return { start: range.start, end: Math.min(range.end ?? size - 1, size - 1) };
}

/**
 * Remembers which of the watched streams failed first: that is where a failure began, since a pipeline passes the
 * error on to the others afterwards. Lets a driver tell the body's failure (the client's) from its own. Watch the
 * body before the first await: a stream that has already failed when it is watched counts from then.
 */
export class FirstFailure {
  private first?: { from: string; error: unknown };

  watch(from: string, stream: NodeJS.EventEmitter & { errored?: unknown }): this {
    if (stream.errored) this.first ??= { from, error: stream.errored };
    stream.on('error', (error: unknown) => {
      this.first ??= { from, error };
    });
    return this;
  }

  /** The error of the first stream to fail, when that stream is `from`. */
  errorOf(from: string): unknown {
    return this.first?.from === from ? this.first.error : undefined;
  }
}
