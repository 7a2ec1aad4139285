import { finished, Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { IDLE_TIMEOUT_MS, type S3Config } from '../config';
import { Gate } from '../gate';
import {
  assertValidKey,
  type ByteRange,
  FirstFailure,
  RangeNotSatisfiableError,
  StorageBusyError,
  type StorageDriver,
  StorageNotFoundError,
  type StoredObject,
  StorageRefusedError,
  StorageUnavailableError,
  resolveRange,
} from './driver';

/** The one place an S3Client is configured, for the app, the tools and the tests alike. */
export function createS3Client(s3: S3Config): S3Client {
  const options: S3ClientConfig = {
    region: s3.region,
    // A copy: the SDK writes into the credentials object it is given, and Config is frozen.
    credentials: s3.credentials ? { ...s3.credentials } : undefined,
    forcePathStyle: s3.forcePathStyle,
    // The SDK's standard retry mode: throttling, 5xx, timeouts and dropped connections are retried with
    // exponential backoff and jitter, S3_MAX_ATTEMPTS attempts in all.
    maxAttempts: s3.maxAttempts,
    requestHandler: {
      connectionTimeout: Math.min(5_000, s3.timeoutMs),
      // Each attempt must be answered within S3_TIMEOUT, body sent included, or it fails and is retried: a hung
      // store turns into an error after about maxAttempts × timeout, never a request that hangs for minutes.
      requestTimeout: s3.timeoutMs,
      throwOnRequestTimeout: true,
      // Once answered, a download's body streams at its client's pace: its socket may sit idle while a slow client
      // catches up (backpressure), as long as the server's own socket timeout allows, not S3_TIMEOUT.
      socketTimeout: IDLE_TIMEOUT_MS,
      // Each download holds a socket for as long as its client takes to read it, so downloads have a client and
      // pool of their own (createStorage); the SDK's default of 50 would be few for either.
      httpAgent: { keepAlive: true, maxSockets: s3.maxSockets },
      httpsAgent: { keepAlive: true, maxSockets: s3.maxSockets },
    },
  };
  if (s3.endpoint) {
    options.endpoint = s3.endpoint;
    // The SDK's default CRC checksums (aws-chunked bodies with trailers) are refused by several S3-compatible
    // stores (R2 answers 501 Not Implemented); compute them only where an operation requires one.
    options.requestChecksumCalculation = 'WHEN_REQUIRED';
    options.responseChecksumValidation = 'WHEN_REQUIRED';
  } else {
    // On AWS, a bucket in another region than AWS_REGION still works instead of failing every request.
    options.followRegionRedirects = true;
  }
  return new S3Client(options);
}

export interface S3DriverOptions {
  /** Multipart part size; the largest object is 10,000 parts. At least 5 MiB (S3's minimum). */
  partSize: number;
  /** Parts uploaded at once per object; memory per upload is about partSize × queueSize. */
  queueSize: number;
  /** The service's key prefix: check() lists under it, which the IAM policy of S3_SETUP_GUIDE.md allows. */
  prefix?: string;
  /**
   * The downloads client's sockets (S3_MAX_SOCKETS), and how long a download waits for one (QUEUE_TIMEOUT). Without
   * it, downloads queue in the SDK, where the wait counts against its connection timeout.
   */
  downloadSlots?: { count: number; waitMs: number };
}

export class S3Driver implements StorageDriver {
  readonly name = 's3' as const;
  /**
   * The downloads pool's sockets, one per GetObject. Each download holds its socket for as long as its client reads,
   * so slow clients can take them all; a download then waits here for one, and is refused as busy after
   * QUEUE_TIMEOUT. Waiting in the SDK's pool instead counted against its connection timeout, so S3 was reported,
   * and logged, as down while it answered every request it was sent.
   */
  readonly downloadSlots?: Gate;

  /**
   * `downloads` sends the GetObjects: a download holds its socket for as long as its client reads, and clients on
   * slow lines must not take the sockets that uploads, deletes and the readiness check need. An upload that found
   * none would wait out S3_TIMEOUT and fall back to local disk. `client` sends everything else.
   */
  constructor(
    readonly client: S3Client,
    private readonly bucket: string,
    private readonly options: S3DriverOptions,
    private readonly downloads: S3Client = client,
  ) {
    const slots = options.downloadSlots;
    if (slots) {
      const busy = (cause: Error) => new StorageBusyError('Too many downloads are under way; try again shortly', { cause });
      this.downloadSlots = new Gate(slots.count, slots.waitMs, busy);
    }
  }

  async put(key: string, body: Readable, { contentType }: { contentType: string }): Promise<void> {
    assertValidKey(key);
    const failure = new FirstFailure().watch('body', body);
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: key, Body: body, ContentType: contentType },
      partSize: this.options.partSize,
      queueSize: this.options.queueSize,
      // When the body fails, Upload aborts the multipart upload itself, and done() settles only afterwards.
      leavePartsOnError: false,
    });
    try {
      await upload.done();
    } catch (err) {
      // The body's own error, when it failed: if the abort that follows also fails, Upload reports the abort's.
      const bodyError = failure.errorOf('body');
      if (bodyError) throw bodyError;
      body.destroy();
      throw new StorageUnavailableError(err);
    }
  }

  async get(key: string, range?: ByteRange, { signal }: { signal?: AbortSignal } = {}): Promise<StoredObject> {
    assertValidKey(key);
    let header: string | undefined;
    if (range && 'suffix' in range) {
      // Resolved here rather than sent as bytes=-N: not every S3-compatible store reads suffix ranges right
      // (s3rver reads bytes=-N as bytes=0-N). One HEAD on a rare request buys the same answer everywhere.
      const { size } = await this.stat(key);
      const resolved = resolveRange(range, size);
      if (!resolved) throw new RangeNotSatisfiableError(size);
      header = `bytes=${resolved.start}-${resolved.end}`;
    } else if (range) {
      header = `bytes=${range.start}-${range.end ?? ''}`;
    }

    // A reader that leaves while waiting for a connection gives up its place: under load, clients that time out
    // and retry would otherwise fill the line with requests no one reads, and refusals would go to those who do.
    const release = this.downloadSlots ? await this.downloadSlots.enter(1, signal) : () => undefined;
    // The reader leaving cancels the request only until its answer starts: from then on the body is the caller's,
    // who destroys it (the SDK would otherwise also drop the connection of a body read to its end).
    const request = new AbortController();
    const cancel = () => request.abort(signal?.reason);
    signal?.addEventListener('abort', cancel, { once: true });
    let res;
    try {
      res = await this.downloads.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: header }), { abortSignal: request.signal });
    } catch (err) {
      release();
      // Not a failure of S3: the reader is gone.
      if (signal?.aborted) throw signal.reason;
      if (errorName(err) === 'InvalidRange') throw new RangeNotSatisfiableError(await this.sizeFrom(err, key));
      throw await this.readFailure(err, key);
    } finally {
      signal?.removeEventListener('abort', cancel);
    }
    const body = res.Body as Readable;
    // The socket is the pool's again once the body is read to its end or destroyed, whichever way that comes.
    finished(body, () => release());
    const contentRange = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(res.ContentRange ?? '');
    if (!range) return { body, size: Number(res.ContentLength) };
    if (!contentRange) {
      // The store ignored the range and sent everything, as stores may for an empty object.
      const size = Number(res.ContentLength);
      if (!resolveRange(range, size)) {
        body.destroy();
        throw new RangeNotSatisfiableError(size);
      }
      return { body, size };
    }
    const size = Number(contentRange[3]);
    const wanted = resolveRange(range, size);
    const start = Number(contentRange[1]);
    if (!wanted) {
      body.destroy();
      throw new RangeNotSatisfiableError(size);
    }
    if (start !== wanted.start) {
      body.destroy();
      throw new StorageUnavailableError(new Error(`Asked for ${header}, the store sent ${res.ContentRange}`));
    }
    // Some stores send more than asked (s3rver reads bytes=0-0 as bytes=0-); the contract is the bytes asked for.
    const end = Number(contentRange[2]);
    return end > wanted.end ? { body: take(body, wanted.end - start + 1), size, range: wanted } : { body, size, range: wanted };
  }

  async stat(key: string): Promise<{ size: number }> {
    assertValidKey(key);
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { size: Number(res.ContentLength) };
    } catch (err) {
      throw await this.readFailure(err, key);
    }
  }

  async check(): Promise<void> {
    try {
      // Not HeadBucket: that needs s3:ListBucket on the whole bucket, and a policy limited to the prefix refuses it.
      const prefix = this.options.prefix ? `${this.options.prefix}/` : undefined;
      await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, MaxKeys: 1 }));
    } catch (err) {
      throw isRefusal(err) ? new StorageRefusedError(err) : new StorageUnavailableError(err);
    }
  }

  async delete(key: string): Promise<void> {
    assertValidKey(key);
    try {
      // S3 answers 204 for a key that is not there, so a repeated delete needs no special case.
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (err) {
      throw new StorageUnavailableError(err);
    }
  }

  /**
   * What a failed GET or HEAD of `key` means. AWS answers a missing key with 403, not 404, unless the credential may
   * list that key, and S3_SETUP_GUIDE.md's policy allows listing only under a prefix condition, which a GET does not
   * carry. So a 403 is asked again as a listing of that one key, which the policy does allow: not there, the file
   * is missing (404 FILE_NOT_FOUND); there, or the listing refused too, the store refuses this service (503).
   */
  private async readFailure(err: unknown, key: string): Promise<Error> {
    if (isNotFound(err) || (statusOf(err) === 403 && !(await this.listsKey(key)))) {
      return new StorageNotFoundError(key, { cause: err });
    }
    return new StorageUnavailableError(err);
  }

  /** Whether a listing shows `key`; true when the listing fails, since then nothing says it is missing. */
  private async listsKey(key: string): Promise<boolean> {
    try {
      // The key itself sorts first among the keys it prefixes.
      const res = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: key, MaxKeys: 1 }));
      return res.Contents?.[0]?.Key === key;
    } catch {
      return true;
    }
  }

  private async sizeFrom(err: unknown, key: string): Promise<number> {
    // AWS and most compatible stores name the size in the InvalidRange error; ask for it where they do not.
    const size = Number((err as { ActualObjectSize?: unknown }).ActualObjectSize);
    return Number.isSafeInteger(size) ? size : (await this.stat(key)).size;
  }
}

/**
 * The first `length` bytes of `source`; leaving the loop early destroys the source, releasing its socket and its
 * download slot. So does destroying the result before it is read (a HEAD): a generator that never started runs no
 * cleanup, and the source would hold both for good.
 */
function take(source: Readable, length: number): Readable {
  const taken = Readable.from(
    (async function* () {
      let left = length;
      for await (const chunk of source as AsyncIterable<Buffer>) {
        yield chunk.length <= left ? chunk : chunk.subarray(0, left);
        left -= Math.min(chunk.length, left);
        if (left === 0) return;
      }
    })(),
    { objectMode: false },
  );
  taken.once('close', () => source.destroy());
  return taken;
}

function errorName(err: unknown): string | undefined {
  return (err as { name?: string } | undefined)?.name;
}

/**
 * Only a real 404 for the object means missing: NoSuchKey from GET, NotFound from HEAD. A missing bucket is a 404
 * too, but it is a broken configuration, not a missing document.
 */
function isNotFound(err: unknown): boolean {
  return statusOf(err) === 404 && errorName(err) !== 'NoSuchBucket';
}

/**
 * S3's answers to a listing that name a configuration no wait will change: the bucket (no such bucket, or its name
 * invalid), the region or endpoint (the SDK follows AWS's redirects itself; a store that does not, or an
 * authorization scoped to the wrong region), the credentials (a key S3 does not know, a secret that does not sign).
 * Not AccessDenied: a policy without s3:ListBucket still lets uploads through (S3_SETUP_GUIDE.md grants it, and
 * /ready reports it), and a new policy takes a moment to apply. Timeouts, resets, 5xx and 429 are an outage.
 */
const REFUSALS = new Set([
  'NoSuchBucket',
  'InvalidBucketName',
  'PermanentRedirect',
  'AuthorizationHeaderMalformed',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
]);

function isRefusal(err: unknown): boolean {
  return REFUSALS.has(errorName(err) ?? '');
}

function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}
