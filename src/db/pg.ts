import pg from 'pg';
import { DatabaseBusyError, DatabaseUnavailableError } from '../errors';
import { Gate } from '../gate';
import type { Db, Queryable, Row, Session } from './db';
import { within } from '../timeout';

// SQLSTATE classes and Node errors that mean "the database is not there", as opposed to a bad statement.
const UNAVAILABLE_SQLSTATES = /^(08|57P0[123]|53300)/;
const UNAVAILABLE_SYSCALLS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE', 'EAI_AGAIN']);

export function isUnavailable(err: unknown): boolean {
  // Duck-typed, not `instanceof Error`: errors from node's own modules can come from another realm (a VM context).
  if (typeof err !== 'object' || err === null) return false;
  const { code, message } = err as { code?: unknown; message?: unknown };
  if (typeof code === 'string' && (UNAVAILABLE_SQLSTATES.test(code) || UNAVAILABLE_SYSCALLS.has(code))) return true;
  return (
    typeof message === 'string' &&
    /Connection terminated|timeout exceeded when trying to connect|connection error|Client was closed|Cannot use a pool after calling end/i.test(message)
  );
}

function translate(err: unknown): never {
  throw isUnavailable(err) ? new DatabaseUnavailableError(err) : err;
}

/** For a failed connect: nothing was sent, so nothing can have taken effect. */
function translateConnect(err: unknown): never {
  throw isUnavailable(err) ? new DatabaseUnavailableError(err, { maybeApplied: false }) : err;
}

function queryable(client: pg.PoolClient): Queryable {
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
  /** Connections in the pool (DATABASE_POOL_SIZE). */
  max?: number;
  /** How long a query waits for one of them before DatabaseBusyError (QUEUE_TIMEOUT). */
  queueTimeoutMs?: number;
}

export function createPgDb(connectionString: string, options: PgDbOptions = {}): Db {
  const max = options.max ?? 10;
  const pool = newPool(connectionString, max, options.onError);
  // The health checks' own connection: /health and /ready say whether the database answers, which a pool whose
  // connections are all busy with a burst of listings says nothing about. Through the shared pool they failed then,
  // and a platform reading /health as liveness would restart a service that was only busy.
  const probe = newPool(connectionString, 1, options.onError);
  // Queries wait here, in order, for one of the pool's connections: pg's own queue counts its wait against the
  // connection timeout and fails it as a connection failure, so a busy pool was reported as the database down.
  // With the gate, pg only connects when a connection is free, and its timeout is the database's alone.
  const connections = new Gate(max, options.queueTimeoutMs ?? 10_000, (cause) => new DatabaseBusyError({ cause }));

  const withClient = <T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> => connections.run(() => usingClient(fn));

  async function usingClient<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await pool.connect().catch(translateConnect);
    let broken: Error | undefined;
    // Noted, so the client is released as broken; the query under way rejects on its own.
    const onError = (err: Error) => {
      broken = err;
    };
    client.on('error', onError);
    try {
      return await fn(client);
    } catch (err) {
      if (err instanceof DatabaseUnavailableError) broken = err;
      throw err;
    } finally {
      client.off('error', onError);
      client.release(broken);
    }
  }

  function session(client: pg.PoolClient): Session {
    return { ...queryable(client), transaction: (fn) => inTransaction(client, fn) };
  }

  async function locked<T>(
    name: string,
    fn: (session: Session, lost: AbortSignal) => Promise<T>,
    wait: boolean,
  ): Promise<T | undefined> {
    return withClient(async (client) => {
      const s = session(client);
      if (!(await acquireAdvisoryLock(s, name, wait))) return undefined;
      // The lock lives and dies with this connection: watched from the moment it is held, so a connection lost
      // during the settings below is not missed.
      const lost = new AbortController();
      const onLost = () => lost.abort(new Error(`the lock ${name} was lost with its database connection`));
      client.on('error', onLost);
      client.on('end', onLost);
      try {
        // If this process dies while holding the lock, its backend must notice and end (releasing the lock), even
        // in the middle of a long statement (Postgres 14+), or while idle, within about two minutes rather than the
        // system's two hours of TCP silence; otherwise every later holder waits for it. Set once the lock is held:
        // a try that finds it taken (the sync job's, every minute) costs one round trip, not three.
        await s.exec("SET client_connection_check_interval = '5s'").catch(() => undefined);
        await s.exec('SET tcp_keepalives_idle = 60; SET tcp_keepalives_interval = 10; SET tcp_keepalives_count = 6').catch(() => undefined);
        return await fn(s, lost.signal);
      } finally {
        client.off('error', onLost);
        client.off('end', onLost);
        await s.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [name]).catch(() => undefined);
      }
    });
  }

  return {
    kind: 'postgres',
    // Through withClient rather than pool.query, so a failure to connect is told apart from one after sending.
    query: (sql, params) => withClient((client) => queryable(client).query(sql, params)),
    exec: (sql) => withClient((client) => queryable(client).exec(sql)),
    transaction: (fn) => withClient((client) => inTransaction(client, fn)),
    // Waiting, locked() only returns once it holds the lock and fn has run.
    withLock: <T>(name: string, fn: (session: Session, lost: AbortSignal) => Promise<T>) => locked(name, fn, true) as Promise<T>,
    tryWithLock: (name, fn) => locked(name, fn, false),
    ping: (timeoutMs) => ping(() => probe.query('SELECT 1'), timeoutMs),
    gates: { database_connections: connections },
    close: async () => {
      await Promise.all([pool.end(), probe.end()]);
    },
  };
}

function newPool(connectionString: string, max: number, onError?: (err: Error) => void): pg.Pool {
  const pool = new pg.Pool({
    connectionString,
    max,
    // A database that does not answer must turn into a quick 503, not a request that hangs.
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    // TCP keepalives, so that a connection the network dropped without a word (a NAT or load balancer forgetting
    // it) is found dead in minutes, not hours: a lock holder's connection sits idle for as long as it holds.
    keepAlive: true,
    keepAliveInitialDelayMillis: 30_000,
  });
  // An idle client losing its connection emits here; without a listener that would crash the process.
  pool.on('error', (err) => onError?.(err));
  // Every client listens for its errors for its whole life, as the pool hands it over included. Between the pool
  // dropping its idle listener and withClient adding its own lies a turn of the event loop, and a connection the
  // server ends right then (Postgres's FATAL arriving in the packet that completes it, on a failover or an
  // administrator's pg_terminate_backend) emitted 'error' with no one listening, which took the process down.
  // Nothing to do here: a client that erred is no longer queryable, so its holder's next query fails and reports
  // the database unavailable, and the pool discards it when it is released.
  pool.on('connect', (client) => client.on('error', () => undefined));
  return pool;
}

/**
 * Waits for the advisory lock by polling rather than with pg_advisory_lock: a session blocked inside
 * pg_advisory_lock has a transaction open, and CREATE INDEX CONCURRENTLY in the lock holder waits for every open
 * transaction to finish. Blocking there deadlocks two instances that start at once; polling never holds one open.
 */
async function acquireAdvisoryLock(session: Session, name: string, wait: boolean): Promise<boolean> {
  for (;;) {
    const [row] = await session.query<{ locked: boolean }>(
      'SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked',
      [name],
    );
    if (row.locked || !wait) return row.locked;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** Whether `probe` succeeds within timeoutMs (for Db.ping). Never throws. */
export function ping(probe: () => Promise<unknown>, timeoutMs: number): Promise<boolean> {
  return within(probe().then(() => true), timeoutMs, false);
}
