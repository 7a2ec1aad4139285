import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { migrate } from '../../src/db/migrate';
import { createPgliteDb } from '../../src/db/pglite';
import { createTestDb, pgliteTemplate, type TestDb } from './db';
import { startS3, type TestS3 } from './s3';

/**
 * Everything a service process needs that outlives the process: an upload directory, a database (a PGlite data
 * directory, or a Postgres database of its own when DATABASE_URL is set) and, for S3, the in-process S3 server.
 * Restarting a process on the same ServiceEnv is a restart on the same disk, database and bucket.
 */
export interface ServiceEnv {
  readonly env: Record<string, string>;
  readonly uploadDir: string;
  readonly s3?: TestS3;
  /** On Postgres, a handle for looking into the database; PGlite can be opened only while no process runs. */
  readonly database?: TestDb;
  close(): Promise<void>;
}

export async function createServiceEnv(
  storage: 'local' | 's3',
  extra: Record<string, string> = {},
  { migrated = false } = {},
): Promise<ServiceEnv> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'service-'));
  const uploadDir = path.join(dir, 'uploads');
  const database = process.env.DATABASE_URL ? await createTestDb() : undefined;
  // As after the service's first start, for the tools, which refuse a database the service has not upgraded.
  if (migrated && database) await migrate(database.db);
  if (!database) {
    // Made here from the run's template, so the service's first start does not spend seconds making the cluster.
    const pglite = await createPgliteDb(path.join(dir, 'pglite'), { template: await pgliteTemplate() });
    if (migrated) await migrate(pglite);
    await pglite.close();
  }
  const s3 = storage === 's3' ? await startS3() : undefined;
  const env: Record<string, string> = {
    UPLOAD_DIR: uploadDir,
    ...(database ? { DATABASE_URL: database.url! } : { PGLITE_DATA_DIR: path.join(dir, 'pglite') }),
    ...s3?.env,
    ...extra,
  };
  return {
    env,
    uploadDir,
    s3,
    database,
    async close() {
      await database?.close();
      await s3?.stop();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}
