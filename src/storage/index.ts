import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Config, StorageName } from '../config';
import { Gate, type GateLoad } from '../gate';
import { BusyError } from '../errors';
import type { Metrics, StorageOutcome } from '../metrics';
import { StorageBusyError, type StorageDriver, StorageUnavailableError } from './driver';
import { LocalDriver } from './local';
import type { S3Driver } from './s3';

export * from './driver';
export type { LocalDriver, StagedFile } from './local';
export type { S3Driver } from './s3';

const MIN_PART_SIZE = 5 * 1024 * 1024;
const MAX_PARTS = 10_000;

/**
 * The drivers of one running service. New uploads go to `primary`; a stored file is read through the driver its
 * row names, so documents uploaded to local disk before S3 was switched on keep downloading afterwards.
 */
export interface Storage {
  readonly primary: StorageDriver;
  /** The local driver, always there: files from before S3, and uploads kept on disk while S3 is down. */
  readonly local: LocalDriver;
  /** The S3 driver when S3 is configured. */
  readonly s3?: S3Driver;
  /** The driver for files recorded under `name`; StorageUnavailableError when that store is not configured. */
  driver(name: StorageName): StorageDriver;
  /**
   * Waits until an upload of at most `bytes` (undefined: of any size) may start to the primary store, and resolves
   * with its release, to call once the store has it or has failed. An upload to S3 holds its parts in memory
   * (lib-storage needs a whole part before sending it): up to three parts each, and S3_UPLOAD_MEMORY for all of
   * them together. Uploads beyond it wait, unread, so their clients pause; StorageBusyError after QUEUE_TIMEOUT, or
   * the signal's reason when it aborts first. To local disk, uploads start at once.
   */
  admitUpload(bytes: number | undefined, signal?: AbortSignal): Promise<() => void>;
  /** The gates uploads and downloads wait at, by the name ops see them under (Metrics.watchGates). */
  readonly gates: Readonly<Record<string, GateLoad | undefined>>;
  /** Releases the S3 client's sockets, when this module made the client. */
  close(): void;
}

/**
 * The one place that picks drivers. `s3Client` is injected by tests and tools; the app lets it be built here.
 * With `metrics`, every driver call is timed and its failures counted.
 */
export function createStorage(config: Config, s3Client?: S3Client, { metrics }: { metrics?: Metrics } = {}): Storage {
  const local = instrument(new LocalDriver(config.storage.uploadDir), metrics);
  const s3config = config.storage.s3;
  let s3: S3Driver | undefined;
  // With S3 primary: the room for uploads' parts, and what one upload may hold at most.
  let uploadRoom: { gate: Gate; perUpload: number } | undefined;
  // Made here, one for downloads and one for the rest (see S3Driver), unless a test or tool injects its own.
  const made: S3Client[] = [];
  if (s3config) {
    const s3module = loadS3();
    if (!s3Client) made.push(s3module.createS3Client(s3config), s3module.createS3Client(s3config));
    const [client, downloads] = s3Client ? [s3Client, s3Client] : made;
    // Big enough that the largest allowed upload fits in S3's 10,000 parts; never below S3's minimum.
    const partSize = Math.max(MIN_PART_SIZE, Math.ceil(config.uploads.maxBytes / MAX_PARTS));
    // Two parts in flight (and one filling) per upload: the bench measured a 1 GB upload peaking at 157–184 MB RSS
    // with four, 138–166 MB with two, at the same speed against s3rver.
    const queueSize = 2;
    if (config.storage.driver === 's3') {
      const busy = (cause: Error) => new StorageBusyError('Too many uploads are under way; try again shortly', { cause });
      const gate = new Gate(s3config.uploadMemory, config.reliability.queueTimeoutMs, busy);
      uploadRoom = { gate, perUpload: partSize * (queueSize + 1) };
    }
    s3 = instrument(
      new s3module.S3Driver(
        client,
        s3config.bucket,
        {
          partSize,
          queueSize,
          prefix: s3config.prefix,
          downloadSlots: { count: s3config.maxSockets, waitMs: config.reliability.queueTimeoutMs },
        },
        downloads,
      ),
      metrics,
    );
  }
  const drivers: Partial<Record<StorageName, StorageDriver>> = { local, s3 };
  return {
    primary: config.storage.driver === 's3' && s3 ? s3 : local,
    local,
    s3,
    driver(name) {
      const driver = drivers[name];
      if (!driver) {
        throw new StorageUnavailableError(new Error(`Files stored on ${name} need ${name} to be configured (AWS_S3_BUCKET_NAME)`));
      }
      return driver;
    },
    gates: { s3_upload_bytes: uploadRoom?.gate, s3_download_sockets: s3?.downloadSlots },
    async admitUpload(bytes, signal) {
      if (!uploadRoom) return () => undefined;
      // A small file is one PutObject of the file: it holds its own size, not three parts.
      return uploadRoom.gate.enter(Math.min(bytes ?? Infinity, uploadRoom.perUpload), signal);
    },
    close() {
      // Only the clients made here: an injected one is its owner's to destroy.
      for (const client of made) client.destroy();
    },
  };
}

/**
 * The S3 driver's module, loaded only when S3 is configured: the AWS SDK it brings is about 10 MB of an idle
 * service's 85 MB of RSS, which a service on local disk does without.
 */
function loadS3(): typeof import('./s3') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('./s3') as typeof import('./s3');
}

const OPERATIONS = ['put', 'get', 'stat', 'delete'] as const;

/** Times the driver's calls in place (the instance keeps its own type and extra methods). */
function instrument<T extends StorageDriver>(driver: T, metrics: Metrics | undefined): T {
  if (!metrics) return driver;
  for (const operation of OPERATIONS) {
    const call = (driver[operation] as (...args: unknown[]) => Promise<unknown>).bind(driver);
    (driver as unknown as Record<string, unknown>)[operation] = async (...args: unknown[]) => {
      const started = process.hrtime.bigint();
      const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
      try {
        const result = await call(...args);
        metrics.observeStorage(driver.name, operation, seconds(), 'ok');
        return result;
      } catch (err) {
        metrics.observeStorage(driver.name, operation, seconds(), outcomeOf(operation, args, err));
        throw err;
      }
    };
  }
  return driver;
}

/**
 * Only the store's own failures are errors. A call refused for want of room never reached the store; one its client
 * gave up (a download's reader gone, an upload's body cut off or refused midway) says nothing of the store either.
 * Anything else counts as answered: a missing file is an answer.
 */
function outcomeOf(operation: (typeof OPERATIONS)[number], args: unknown[], err: unknown): StorageOutcome {
  if (err instanceof StorageUnavailableError) return 'error';
  if (err instanceof BusyError) return 'busy';
  if (operation === 'get' && (args[2] as { signal?: AbortSignal } | undefined)?.signal?.aborted) return 'cancelled';
  // A body destroyed before its end: the client left, or its upload was refused midway (413). One refused before it
  // was read (an invalid key) is the server's own failure, not a cancellation.
  const body = args[1] as Readable;
  if (operation === 'put' && body.destroyed && !body.readableEnded) return 'cancelled';
  return 'ok';
}
