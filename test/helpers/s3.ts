import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import type { S3Config } from '../../src/config';
import { createS3Client } from '../../src/storage/s3';
import { startProxy, type TestProxy } from './proxy';
import { createS3rver } from './s3rver';

export interface TestS3 {
  /** The environment that points the service at this server. */
  readonly env: Record<string, string>;
  readonly config: S3Config;
  /** A client of the test's own, for looking into the bucket. */
  readonly client: S3Client;
  readonly directory: string;
  /** The network between the service and the server: to make it hang, or count what passes. */
  readonly proxy: TestProxy;
  /** Stops the server, resetting every connection to it; the bucket's files stay. */
  down(): Promise<void>;
  /** Starts the server again on the same files. */
  up(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A real S3 HTTP server (s3rver) in this process with an empty bucket, reached through a TCP proxy so a test can
 * take it down, bring it back, or make it hang. s3rver accepts the signature of the fixed key pair S3RVER/S3RVER,
 * so requests are signed exactly as they are for AWS.
 */
export async function startS3(bucket = 'test-documents'): Promise<TestS3> {
  const directory = await fs.mkdtemp(path.join(os.tmpdir(), 's3rver-'));
  const run = async () => {
    const server = createS3rver({ port: 0, address: '127.0.0.1', directory, silent: true, configureBuckets: [{ name: bucket }] });
    const { port } = (await server.run()) as { port: number };
    return { server, port };
  };
  let s3rver: Awaited<ReturnType<typeof run>> | undefined = await run();
  const proxy = await startProxy(s3rver.port);
  const env = {
    STORAGE_DRIVER: 's3',
    AWS_S3_BUCKET_NAME: bucket,
    AWS_S3_ENDPOINT: `http://127.0.0.1:${proxy.port}`,
    AWS_S3_FORCE_PATH_STYLE: 'true',
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_S3_PREFIX: 'customer-documents',
    // An outage must show within a test's patience: 2 attempts of at most 2 s each.
    S3_TIMEOUT: '2s',
    S3_MAX_ATTEMPTS: '2',
  };
  const config: S3Config = {
    bucket,
    region: 'us-east-1',
    prefix: 'customer-documents',
    endpoint: env.AWS_S3_ENDPOINT,
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    timeoutMs: 2_000,
    maxSockets: 256,
    maxAttempts: 2,
    uploadMemory: 128 * 1024 * 1024,
  };
  const client = createS3Client(config);
  const stopServer = async () => {
    const current = s3rver;
    s3rver = undefined;
    await proxy.down();
    await current?.server.close();
  };
  return {
    env,
    config,
    client,
    directory,
    proxy,
    down: stopServer,
    async up() {
      if (s3rver) return;
      s3rver = await run();
      proxy.retarget(s3rver.port);
      await proxy.up();
    },
    async stop() {
      client.destroy();
      await stopServer();
      await proxy.close();
      await fs.rm(directory, { recursive: true, force: true });
    },
  };
}
