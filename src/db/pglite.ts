import fs from 'node:fs/promises';
import { Mutex, PGlite, type Transaction } from '@electric-sql/pglite';
import lockfile from 'proper-lockfile';
import { DatabaseUnavailableError } from '../errors';
import type { Db, Queryable, Row, Session } from './db';
import { ping } from './pg';

function translate(err: unknown): never {
  // PGlite runs in this process: the only way for it to be unreachable is to have been closed.
  if (err instanceof Error && /PGlite is clos/.test(err.message)) throw new DatabaseUnavailableError(err);
  throw err;
}

function queryable(target: PGlite | Transaction): Queryable {
  return {
    async query<T = Row>(sql: string, params?: readonly unknown[]) {
      const res = await target.query<T>(sql, params as unknown[] | undefined).catch(translate);
      return res.rows;
    },
    async exec(sql: string) {
      await target.exec(sql).catch(translate);
    },
  };
}

/**
 * Opens the embedded database. `dataDir` undefined or 'memory://' keeps it in memory (tests). A data directory
 * is locked for as long as it is open: PGlite itself does not stop a second process from opening it, and two
 * would corrupt it (a redeploy that starts the new instance before the old one has stopped, on one volume).
 */
export async function createPgliteDb(
  dataDir?: string,
  { onError, lockRetries = 20 }: { onError?: (err: Error) => void; lockRetries?: number } = {},
): Promise<Db> {
  if (!dataDir || dataDir.startsWith('memory://')) return wrapPglite(await PGlite.create(dataDir));
  await fs.mkdir(dataDir, { recursive: true });
  const release = await lockfile
    .lock(dataDir, {
      // Refreshed every 5 s; a lock left by a process that died is taken over once 30 s old.
      stale: 30_000,
      update: 5_000,
      // An old instance still shutting down gets that long to let go.
      retries: { retries: lockRetries, minTimeout: 1_000, maxTimeout: 2_000 },
      onCompromised: (err) => onError?.(err),
    })
    .catch((err) => {
      throw new Error(`PGLITE_DATA_DIR ${dataDir} is in use by another process; the embedded database serves one process at a time`, {
        cause: err,
      });
    });
  try {
    return wrapPglite(await PGlite.create(dataDir), release);
  } catch (err) {
    await release();
    throw err;
  }
}

function wrapPglite(pglite: PGlite, release?: () => Promise<void>): Db {
  // PGlite is one session inside one process (its data directory cannot be opened twice), so a lock held by this
  // process is a lock for every user of the database. pg_advisory_lock would not do: within one session it is
  // re-entrant, and every caller here shares that session.
  const locks = new Map<string, Mutex>();
  const session: Session = {
    ...queryable(pglite),
    // PGlite's query() waits while a transaction holds its connection, so concurrent requests never see each
    // other's uncommitted statements.
    transaction: (fn) => pglite.transaction((tx) => fn(queryable(tx))).catch(translate),
  };
  return {
    kind: 'pglite',
    ...session,
    withLock: async (name, fn) => {
      let lock = locks.get(name);
      if (!lock) locks.set(name, (lock = new Mutex()));
      return lock.runExclusive(() => fn(session));
    },
    ping: (timeoutMs) => ping(() => pglite.query('SELECT 1'), timeoutMs),
    close: async () => {
      if (!pglite.closed) await pglite.close();
      await release?.().catch(() => undefined);
    },
  };
}
