import pg from 'pg';
import { DatabaseUnavailableError } from '../errors';
import type { Db, Queryable, Row, Session } from './db';

// SQLSTATE classes and Node errors that mean "the database is not there", as opposed to a bad statement.
const UNAVAILABLE_SQLSTATES = /^(08|57P0[123]|53300)/;
const UNAVAILABLE_SYSCALLS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE', 'EAI_AGAIN']);

export function isUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (UNAVAILABLE_SQLSTATES.test(code) || UNAVAILABLE_SYSCALLS.has(code))) return true;
  return /Connection terminated|timeout exceeded when trying to connect|connection error|Client was closed|Cannot use a pool after calling end/i.test(
    err.message,
  );
}

function translate(err: unknown): never {
  throw isUnavailable(err) ? new DatabaseUnavailableError(err) : err;
}

function queryable(client: pg.Pool | pg.PoolClient): Queryable {
  return {
    async query<T = Row>(sql: string, params?: readonly unknown[]) {
      const res = await client.query(sql, params as unknown[] | undefined).catch(translate);
      return res.rows as T[];
    },
    async exec(sql: string) {
      await client.query(sql).catch(translate);
    },
  };
}

async function inTransaction<T>(client: pg.PoolClient, fn: (tx: Queryable) => Promise<T>): Promise<T> {
  const tx = queryable(client);
  await tx.exec('BEGIN');
  try {
    const result = await fn(tx);
    await tx.exec('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

export interface PgDbOptions {
  onError?: (err: Error) => void;
  max?: number;
}

export function createPgDb(connectionString: string, options: PgDbOptions = {}): Db {
  const pool = new pg.Pool({
    connectionString,
    max: options.max ?? 10,
    // A database that does not answer must turn into a quick 503, not a request that hangs.
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
  });
  // An idle client losing its connection emits here; without a listener that would crash the process.
  pool.on('error', (err) => options.onError?.(err));

  async function withClient<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await pool.connect().catch(translate);
    let broken: Error | undefined;
    try {
      return await fn(client);
    } catch (err) {
      if (err instanceof DatabaseUnavailableError) broken = err;
      throw err;
    } finally {
      client.release(broken);
    }
  }

  function session(client: pg.PoolClient): Session {
    return { ...queryable(client), transaction: (fn) => inTransaction(client, fn) };
  }

  return {
    kind: 'postgres',
    ...queryable(pool),
    transaction: (fn) => withClient((client) => inTransaction(client, fn)),
    withLock: (name, fn) =>
      withClient(async (client) => {
        const s = session(client);
        // If this process dies while holding the lock, its backend must notice and end (releasing the lock), even
        // in the middle of a long statement; otherwise every later instance waits for it. Postgres 14+ only.
        await s.exec("SET client_connection_check_interval = '5s'").catch(() => undefined);
        await acquireAdvisoryLock(s, name);
        try {
          return await fn(s);
        } finally {
          await s.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [name]).catch(() => undefined);
        }
      }),
    ping: (timeoutMs) => ping(() => pool.query('SELECT 1'), timeoutMs),
    close: () => pool.end(),
  };
}

/**
 * Waits for the advisory lock by polling rather than with pg_advisory_lock: a session blocked inside
 * pg_advisory_lock has a transaction open, and CREATE INDEX CONCURRENTLY in the lock holder waits for every open
 * transaction to finish. Blocking there deadlocks two instances that start at once; polling never holds one open.
 */
async function acquireAdvisoryLock(session: Session, name: string): Promise<void> {
  for (;;) {
    const [row] = await session.query<{ locked: boolean }>(
      'SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked',
      [name],
    );
    if (row.locked) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

export async function ping(probe: () => Promise<unknown>, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  try {
    return await Promise.race([probe().then(() => true, () => false), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
