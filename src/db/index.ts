import type { Config } from '../config';
import type { Db } from './db';
import { createPgDb } from './pg';
import { createPgliteDb } from './pglite';

export type { Db, Queryable, Session } from './db';

/** The database named by the config: Postgres when DATABASE_URL is set, else the embedded PGlite. */
export async function createDb(config: Config, onError?: (err: Error) => void): Promise<Db> {
  return config.database.url
    ? createPgDb(config.database.url, { onError })
    : createPgliteDb(config.database.pgliteDataDir, { onError });
}
