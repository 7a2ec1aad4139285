import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import pg from 'pg';
import type { Db } from '../../src/db';
import { createPgDb } from '../../src/db/pg';
import { createPgliteDb } from '../../src/db/pglite';

export interface TestDb {
  readonly db: Db;
  readonly kind: 'postgres' | 'pglite';
  /** The connection string of this database, on Postgres. */
  readonly url?: string;
  /** Another handle on the same database, as a second instance of the service would open it. */
  openAgain(): Promise<Db>;
  close(): Promise<void>;
}

let template: Promise<Blob | undefined> | undefined;

/**
 * A new cluster, as PGlite makes it, from the dump test/global-setup.ts made once for the run; read once per test
 * file (40 MB), not once per database.
 */
export function pgliteTemplate(): Promise<Blob | undefined> {
  const file = process.env.TEST_PGLITE_TEMPLATE;
  template ??= file ? fs.readFile(file).then((bytes) => new Blob([bytes])) : Promise.resolve(undefined);
  return template;
}

/**
 * A database of this test file's own: in-memory PGlite by default; with DATABASE_URL set, a new database on that
 * Postgres server, dropped again at the end, so parallel test files and runs never see each other's rows. `pool`:
 * the connections on Postgres (PGlite has one) and how long a query waits for one.
 */
export async function createTestDb(pool: { max?: number; queueTimeoutMs?: number } = {}): Promise<TestDb> {
  const adminUrl = process.env.DATABASE_URL;
  if (!adminUrl) {
    const db = await createPgliteDb(undefined, { template: await pgliteTemplate(), queueTimeoutMs: pool.queueTimeoutMs });
    return { db, kind: 'pglite', openAgain: async () => db, close: () => db.close() };
  }
  const name = `crm_docs_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const handles: Db[] = [];
  const open = async () => {
    const db = createPgDb(url.toString(), pool);
    handles.push(db);
    return db;
  };
  const db = await open();
  return {
    db,
    kind: 'postgres',
    url: url.toString(),
    openAgain: open,
    async close() {
      await Promise.all(handles.map((h) => h.close().catch(() => undefined)));
      const cleanup = new pg.Client({ connectionString: adminUrl });
      await cleanup.connect();
      await cleanup.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await cleanup.end();
    },
  };
}

/**
 * Holds the lock `name` on `db`, as another holder would (the background sync, a second tool), until `release`:
 * resolves once the lock is held. Release it in a finally, or a held Postgres connection keeps the database open.
 */
export async function holdLock(db: Db, name: string): Promise<{ release(): Promise<void> }> {
  let release!: () => void;
  let held!: () => void;
  const acquired = new Promise<void>((resolve) => (held = resolve));
  const holder = db.withLock(name, () => {
    held();
    return new Promise<void>((resolve) => (release = resolve));
  });
  await acquired;
  return {
    async release() {
      release();
      await holder;
    },
  };
}
