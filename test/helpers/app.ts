import { once } from 'node:events';
import fs from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import supertest from 'supertest';
import type { Express } from 'express';
import { createApp } from '../../src/app';
import type { MinimumRate } from '../../src/http/rate';
import { type Config, loadConfig } from '../../src/config';
import { migrate } from '../../src/db/migrate';
import { createLogger, type Logger } from '../../src/logger';
import { Metrics } from '../../src/metrics';
import { createServices, type Services } from '../../src/services';
import { createStorage, type Storage } from '../../src/storage';
import { createTestDb, type TestDb } from './db';
import { startS3, type TestS3 } from './s3';

export interface TestApp {
  readonly app: Express;
  readonly config: Config;
  readonly database: TestDb;
  readonly storage: Storage;
  readonly uploadDir: string;
  readonly s3?: TestS3;
  /** The services behind the routes: to run the background job's steps, or wait for work a request left running. */
  readonly services: Services;
  request(): supertest.Agent;
  /** The app on a real port (for raw clients that stream, pause or drop); closed with the app. */
  listen(): Promise<number>;
  /** Waits for work requests left running (file removals after a delete). */
  settle(): Promise<void>;
  /** Every stored file: paths under UPLOAD_DIR (temporary files included) and keys in the bucket (unless localOnly). */
  storedFiles(options?: { localOnly?: boolean }): Promise<string[]>;
  close(): Promise<void>;
}

export const logger = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');

/** The real app on a database and storage of its own: local disk, or an in-process S3 server. */
export async function startTestApp(
  options: { storage?: 'local' | 's3'; env?: Record<string, string>; database?: TestDb; bodyRate?: MinimumRate; sendRate?: MinimumRate; formTailMs?: number; logger?: Logger } = {},
): Promise<TestApp> {
  const uploadDir = await fs.mkdtemp(path.join(os.tmpdir(), 'uploads-'));
  const s3 = options.storage === 's3' ? await startS3() : undefined;
  const config = loadConfig({ NODE_ENV: 'test', UPLOAD_DIR: uploadDir, ...s3?.env, ...options.env });
  const database = options.database ?? (await createTestDb());
  await migrate(database.db);
  const metrics = new Metrics();
  // The app's S3 client is built from the configuration, as in production; s3.client is the test's own.
  const storage = createStorage(config, undefined, { metrics });
  // Deletions that fail are retried at once when a test runs the queue, not after a backoff.
  const log = options.logger ?? logger;
  const services = createServices({ config, db: database.db, storage, logger: log, metrics }, { deletions: { retryBaseMs: 0 } });
  const app = createApp({ config, db: database.db, storage, logger: log, services, bodyRate: options.bodyRate, sendRate: options.sendRate, formTailMs: options.formTailMs });
  let server: Server | undefined;
  return {
    app,
    config,
    database,
    storage,
    uploadDir,
    s3,
    services,
    request: () => supertest.agent(app),
    async listen() {
      server ??= app.listen(0, '127.0.0.1');
      if (!server.listening) await once(server, 'listening');
      return (server.address() as AddressInfo).port;
    },
    async settle() {
      await services.tasks.idle();
    },
    async storedFiles({ localOnly = false } = {}) {
      const local = (await fs.readdir(uploadDir, { recursive: true, withFileTypes: true }))
        .filter((e) => e.isFile())
        .map((e) => path.relative(uploadDir, path.join(e.parentPath, e.name)));
      if (!s3 || localOnly) return local;
      const listed = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.config.bucket }));
      return [...local, ...(listed.Contents ?? []).map((o) => `s3:${o.Key}`)];
    },
    async close() {
      server?.closeAllConnections();
      server?.close();
      await services.tasks.idle(5_000);
      storage.close();
      if (!options.database) await database.close();
      await s3?.stop();
      await fs.rm(uploadDir, { recursive: true, force: true });
    },
  };
}

