import fs from 'node:fs/promises';
import { Mutex, PGlite, type Transaction } from '@electric-sql/pglite';
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

/** Wraps an open PGlite. `dataDir` undefined or 'memory://' keeps the database in memory (tests). */
export async function createPgliteDb(dataDir?: string): Promise<Db> {
  if (dataDir && !dataDir.startsWith('memory://')) await fs.mkdir(dataDir, { recursive: true });
  const pglite = await PGlite.create(dataDir);
  return wrapPglite(pglite);
}

export function wrapPglite(pglite: PGlite): Db {
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
    },
  };
}
