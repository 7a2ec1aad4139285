import type { Config } from '../config';
import type { Db } from './db';
import { createPgDb } from './pg';

export { type Db, LIST_PAGE, type Page, pageOf, type Queryable, type Session } from './db';

/**
 * The database named by the config: Postgres when DATABASE_URL is set, else the embedded PGlite. `lockRetries`:
 * seconds to wait for another process to let go of PGlite's data directory (see createPgliteDb).
 */
export async function createDb(config: Config, onError?: (err: Error) => void, { lockRetries }: { lockRetries?: number } = {}): Promise<Db> {
  return config.database.url
    ? createPgDb(config.database.url, { onError, max: config.database.poolSize, queueTimeoutMs: config.reliability.queueTimeoutMs })
    : loadPglite().createPgliteDb(config.database.pgliteDataDir, { onError, lockRetries, queueTimeoutMs: config.reliability.queueTimeoutMs });
}

/** PGlite's module, loaded only without DATABASE_URL: a service on Postgres does without its 1–2 MB. */
function loadPglite(): typeof import('./pglite') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('./pglite') as typeof import('./pglite');
}
