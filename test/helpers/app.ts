import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import supertest from 'supertest';
import type { Express } from 'express';
import { createApp } from '../../src/app';
import { type Config, loadConfig } from '../../src/config';
import { migrate } from '../../src/db/migrate';
import { createLogger } from '../../src/logger';
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
  request(): supertest.Agent;
  /** Every stored file: paths under UPLOAD_DIR (temporary files included) and keys in the bucket. */
  storedFiles(): Promise<string[]>;
  close(): Promise<void>;
}

export const logger = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');

/** The real app on a database and storage of its own: local disk, or an in-process S3 server. */
export async function startTestApp(
  options: { storage?: 'local' | 's3'; env?: Record<string, string>; database?: TestDb } = {},
): Promise<TestApp> {
  const uploadDir = await fs.mkdtemp(path.join(os.tmpdir(), 'uploads-'));
  const s3 = options.storage === 's3' ? await startS3() : undefined;
  const config = loadConfig({ NODE_ENV: 'test', UPLOAD_DIR: uploadDir, ...s3?.env, ...options.env });
  const database = options.database ?? (await createTestDb());
  await migrate(database.db);
  const storage = createStorage(config, s3?.client);
  const app = createApp({ config, db: database.db, storage, logger });
  return {
    app,
    config,
    database,
    storage,
    uploadDir,
    s3,
    request: () => supertest.agent(app),
    async storedFiles() {
      const local = (await fs.readdir(uploadDir, { recursive: true, withFileTypes: true }))
        .filter((e) => e.isFile())
        .map((e) => path.relative(uploadDir, path.join(e.parentPath, e.name)));
      if (!s3) return local;
      const listed = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.config.bucket }));
      return [...local, ...(listed.Contents ?? []).map((o) => `s3:${o.Key}`)];
    },
    async close() {
      if (!options.database) await database.close();
      await s3?.stop();
      await fs.rm(uploadDir, { recursive: true, force: true });
    },
  };
}

