import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import type { S3Config } from '../../src/config';
import { createS3Client } from '../../src/storage/s3';

export interface TestS3 {
  readonly env: Record<string, string>;
  readonly config: S3Config;
  readonly client: S3Client;
  readonly directory: string;
  stop(): Promise<void>;
}

/**
 * A real S3 HTTP server (s3rver) in this process, on a free port, with an empty bucket. s3rver accepts the
 * signature of the fixed key pair S3RVER/S3RVER, so requests are signed exactly as they are for AWS.
 */
export async function startS3(bucket = 'test-documents'): Promise<TestS3> {
  const directory = await fs.mkdtemp(path.join(os.tmpdir(), 's3rver-'));
  const server = new S3rver({
    port: 0,
    address: '127.0.0.1',
    directory,
    silent: true,
    configureBuckets: [{ name: bucket }],
  });
  const { port } = (await server.run()) as { port: number };
  const env = {
    STORAGE_DRIVER: 's3',
    AWS_S3_BUCKET_NAME: bucket,
    AWS_S3_ENDPOINT: `http://127.0.0.1:${port}`,
    AWS_S3_FORCE_PATH_STYLE: 'true',
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_S3_PREFIX: 'customer-documents',
  };
  const config: S3Config = {
    bucket,
    region: 'us-east-1',
    prefix: 'customer-documents',
    endpoint: env.AWS_S3_ENDPOINT,
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  };
  const client = createS3Client(config);
  return {
    env,
    config,
    client,
    directory,
    async stop() {
      client.destroy();
      await server.close();
      await fs.rm(directory, { recursive: true, force: true });
    },
  };
}
