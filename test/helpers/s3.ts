import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import type { S3Config } from '../../src/config';
import { createS3Client } from '../../src/storage/s3';
import { startProxy, type TestProxy } from './proxy';

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
 * s3rver 3.7.1 (its last release) stores a key a/b/c as the file c in the directory a/b, and a delete removes the
 * directory once it is empty. A put under the same prefix at that moment has made the directory but not yet opened
 * its file: the open fails with ENOENT, s3rver does not listen for the error (an uncaught exception in the test's
 * process), and still answers 200 with the object missing. S3 has no directories, so nothing a client sees depends
 * on their removal: the delete here removes the object's own files and leaves the directory. The same store code
 * serves everything else. (Two deletes racing on the rmdir is jamhall/s3rver#788, still open.)
 */
function keepDirectoriesOnDelete(server: S3rver): void {
  const store = server.store;
  store.deleteObject = async (bucket, key) => {
    const files = ['object', 'object.md5', 'metadata.json'].map((resource) => store.getResourcePath(bucket, key, resource));
    await Promise.all(files.map((file) => fs.rm(file, { force: true })));
  };
}

/**
 * A real S3 HTTP server (s3rver) in this process with an empty bucket, reached through a TCP proxy so a test can
 * take it down, bring it back, or make it hang. s3rver accepts the signature of the fixed key pair S3RVER/S3RVER,
 * so requests are signed exactly as they are for AWS.
 */
export async function startS3(bucket = 'test-documents'): Promise<TestS3> {
  const directory = await fs.mkdtemp(path.join(os.tmpdir(), 's3rver-'));
  const run = async () => {
    const server = new S3rver({ port: 0, address: '127.0.0.1', directory, silent: true, configureBuckets: [{ name: bucket }] });
    keepDirectoriesOnDelete(server);
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
    maxAttempts: 2,
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
