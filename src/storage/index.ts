import type { S3Client } from '@aws-sdk/client-s3';
import type { Config, StorageName } from '../config';
import { type StorageDriver, StorageUnavailableError } from './driver';
import { LocalDriver } from './local';
import { createS3Client, S3Driver } from './s3';

export * from './driver';

const MIN_PART_SIZE = 5 * 1024 * 1024;
const MAX_PARTS = 10_000;

/**
 * The drivers of one running service. New uploads go to `primary`; a stored file is read through the driver its
 * row names, so documents uploaded to local disk before S3 was switched on keep downloading afterwards.
 */
export interface Storage {
  readonly primary: StorageDriver;
  /** The driver for files recorded under `name`; StorageUnavailableError when that store is not configured. */
  driver(name: StorageName): StorageDriver;
}

/** The one place that picks drivers. `s3Client` is injected by tests and tools; the app lets it be built here. */
export function createStorage(config: Config, s3Client?: S3Client): Storage {
  const local = new LocalDriver(config.storage.uploadDir);
  const s3config = config.storage.s3;
  const s3 = s3config
    ? new S3Driver(s3Client ?? createS3Client(s3config), s3config.bucket, {
        // Big enough that the largest allowed upload fits in S3's 10,000 parts; never below S3's minimum.
        partSize: Math.max(MIN_PART_SIZE, Math.ceil(config.uploads.maxBytes / MAX_PARTS)),
        queueSize: 4,
      })
    : undefined;
  const drivers: Partial<Record<StorageName, StorageDriver>> = { local, s3 };
  return {
    primary: config.storage.driver === 's3' && s3 ? s3 : local,
    driver(name) {
      const driver = drivers[name];
      if (!driver) {
        throw new StorageUnavailableError(new Error(`Files stored on ${name} need ${name} to be configured (AWS_S3_BUCKET_NAME)`));
      }
      return driver;
    },
  };
}
