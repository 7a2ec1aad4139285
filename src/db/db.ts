import type { GateLoad } from '../gate';

export type Row = Record<string, unknown>;

/**
 * Rows per query when a listing of any length is read in pages. A listing holds up to two pages while it is written
 * (one being sent, the next read), so the page is what a burst of listings costs: 500 at once of 5,000 documents
 * peaked at 564–1,484 MB RSS with 1,000 rows, 402–557 MB with 200, 382 MB once with 100 (BENCH_ONLY=many-listings
 * npm run bench, 2026-11-26). Reading one row past the page, rather than the whole second page before the first is
 * written: 411–682 MB (median 537) against 561–720 MB (median 639), over five and four runs.
 */
export const LIST_PAGE = 200;

/** One page of a listing, and whether another follows (known without reading it: see pageOf). */
export interface Page<T> {
  items: T[];
  more: boolean;
}

/**
 * The page of `limit` rows in `rows`, read with LIMIT limit + 1: one row past the page says that another follows,
 * without reading it. Trims `rows` in place.
 */
export function pageOf<T>(rows: T[], limit: number): { rows: T[]; more: boolean } {
  const more = rows.length > limit;
  if (more) rows.length = limit;
  return { rows, more };
}

export interface Queryable {
  /** Runs one statement with $1..$n parameters and returns its rows. */
  query<T = Row>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /** Runs one or more statements without parameters (migration files). */
  exec(sql: string): Promise<void>;
}

export interface Session extends Queryable {
  /** Runs fn inside BEGIN/COMMIT; rolls back and rethrows when fn throws. Keep fn to database work. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
}

/**
 * The one database interface the repositories and the migrator see. Two implementations: Postgres through pg's
 * pool, and the embedded PGlite. Both throw DatabaseUnavailableError when the database cannot be reached, and the
 * driver's own error (with its SQLSTATE `code`) for everything else.
 */
export interface Db extends Session {
  readonly kind: 'postgres' | 'pglite';
  /**
   * Runs fn on one session while holding a lock named `name` that every other holder waits for: on Postgres every
   * instance of the service using the database; on PGlite every caller in this process, the only process that can
   * have the data directory open. Released when fn settles, and by Postgres when the holder's connection dies:
   * `lost` aborts then, so that a holder working for long (a migration of files) can stop rather than go on unguarded.
   */
  withLock<T>(name: string, fn: (session: Session, lost: AbortSignal) => Promise<T>): Promise<T>;
  /** As withLock, but when another holder has the lock, returns undefined at once instead of waiting. */
  tryWithLock<T>(name: string, fn: (session: Session, lost: AbortSignal) => Promise<T>): Promise<T | undefined>;
  /** The gates queries wait at, by the name ops see them under (Metrics.watchGates). */
  readonly gates?: Readonly<Record<string, GateLoad>>;
  /** Answers whether the database responds within timeoutMs. Never throws. */
  ping(timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
}
