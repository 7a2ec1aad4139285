import { startS3, type TestS3 } from '../helpers/s3';
import { S3Driver } from '../../src/storage/s3';
import { describeStorageDriver } from './conformance';

describeStorageDriver('S3 (s3rver over HTTP)', async () => {
  const s3: TestS3 = await startS3();
  const driver = new S3Driver(s3.client, s3.config.bucket, { partSize: 5 * 1024 * 1024, queueSize: 4 });
  return { driver, cleanup: () => s3.stop() };
});
