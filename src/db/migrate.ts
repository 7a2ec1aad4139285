import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Db, Session } from './db';

/** migrations/ at the project's top level; the same relative path from src/db and from dist/db. */
export const MIGRATIONS_DIR = path.resolve(__dirname, '../../migrations');

// Not "schema_migrations": the CRM that shares this database may keep its own migration history under that name.
const HISTORY_TABLE = 'document_store_migrations';
const LOCK_NAME = 'crm-document-store:migrations';
const NO_TRANSACTION = /^--\s*migrate:no-transaction\s*$/m;
/**
 * How long a statement waits for a lock before it gives up and tries again later. While it waits, every query on
 * the table queued behind it waits too, the CRM's writes included: this is the longest they are held up. From
 * attempt LONG_WAIT_FROM on it waits past Postgres's deadlock_timeout (1 s by default), the moment Postgres cancels
 * an autovacuum that blocks a lock request; a shorter wait would give up before that every time, and a large
 * table's autovacuum would hold the upgrade off for as long as it runs.
 */
const SHORT_WAIT = '500ms';
const LONG_WAIT = '1500ms';
const LONG_WAIT_FROM = 6;
/** About two minutes in all before startup fails, naming the lock it could not get. */
const LOCK_ATTEMPTS = 40;
const LOCK_NOT_AVAILABLE = '55P03';
/** CREATE/DROP INDEX CONCURRENTLY waits for older transactions without blocking anyone's writes: no timeout. */
const CONCURRENTLY = /\bCONCURRENTLY\b/i;

export interface Migration {
  readonly version: string;
  readonly name: string;
  readonly sql: string;
  readonly checksum: string;
  readonly transactional: boolean;
}

export interface MigrateResult {
  readonly applied: readonly string[];
  /** Applied migrations whose file has changed since: worth a warning, never re-run. */
  readonly changed: readonly string[];
}

/**
 * Applies the migrations in `dir` that this database has not seen, in order, each once.
 *
 * Safe with several instances starting at once: they queue on one lock, and each finds the work of the one before
 * done. Safe when interrupted: a migration file runs in one transaction together with its history row, unless it
 * starts with `-- migrate:no-transaction`, for statements Postgres refuses inside a transaction (CREATE INDEX
 * CONCURRENTLY, a procedure that commits in batches). Such a file runs statement by statement, each ending with a
 * semicolon at the end of its line, and each must be safe to run again, since an interruption repeats the file.
 */
export async function migrate(db: Db, dir = MIGRATIONS_DIR): Promise<MigrateResult> {
  const migrations = await loadMigrations(dir);
  return db.withLock(LOCK_NAME, async (session) => {
    await session.exec(
      `CREATE TABLE IF NOT EXISTS ${HISTORY_TABLE} (
         version TEXT PRIMARY KEY,
         name TEXT NOT NULL,
         checksum TEXT NOT NULL,
         applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
       )`,
    );
    const history = await session.query<{ version: string; checksum: string }>(
      `SELECT version, checksum FROM ${HISTORY_TABLE}`,
    );
    const seen = new Map(history.map((h) => [h.version, h.checksum]));
    const applied: string[] = [];
    const changed: string[] = [];
    for (const m of migrations) {
      const checksum = seen.get(m.version);
      if (checksum !== undefined) {
        if (checksum !== m.checksum) changed.push(m.name);
        continue;
      }
      await apply(session, m);
      applied.push(m.name);
    }
    return { applied, changed };
  });
}

/** The names of migration files not yet recorded as applied (for /ready). Throws when the database does not answer. */
export async function pendingMigrations(db: Db, dir = MIGRATIONS_DIR): Promise<string[]> {
  const migrations = await loadMigrations(dir);
  const history = await db
    .query<{ version: string }>(`SELECT version FROM ${HISTORY_TABLE}`)
    .catch((err: { code?: string }) => {
      if (err.code === '42P01') return []; // no history table yet: nothing applied
      throw err;
    });
  const seen = new Set(history.map((h) => h.version));
  return migrations.filter((m) => !seen.has(m.version)).map((m) => m.name);
}

async function apply(session: Session, m: Migration): Promise<void> {
  const record = `INSERT INTO ${HISTORY_TABLE} (version, name, checksum) VALUES ($1, $2, $3)`;
  const params = [m.version, m.name, m.checksum];
  if (m.transactional) {
    await retryOnLockTimeout(m, (lockTimeout) =>
      session.transaction(async (tx) => {
        await tx.exec(`SET LOCAL lock_timeout = '${lockTimeout}'`);
        await tx.exec(m.sql);
        await tx.query(record, params);
      }),
    );
    return;
  }
  // Statement by statement, each retried alone (each is safe to run again, see migrate): a timeout on the last
  // statement must not rebuild the indexes built before it.
  try {
    for (const statement of splitStatements(m.sql)) {
      await retryOnLockTimeout(m, async (lockTimeout) => {
        await session.exec(`SET lock_timeout = '${CONCURRENTLY.test(statement) ? 0 : lockTimeout}'`);
        await session.exec(statement);
      });
    }
  } catch (err) {
    // The statement's error is the one to report, not a failed reset on a connection that broke.
    await session.exec('RESET lock_timeout').catch(() => undefined);
    throw err;
  }
  await session.exec('RESET lock_timeout');
  await session.query(record, params);
}

/**
 * ALTER TABLE waits for a lock that blocks every query on the table queued behind it: wait briefly, give up, let
 * the CRM's queries through, and try again, rather than stall the CRM for as long as one slow query lasts.
 */
async function retryOnLockTimeout(m: Migration, run: (lockTimeout: string) => Promise<unknown>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await run(attempt < LONG_WAIT_FROM ? SHORT_WAIT : LONG_WAIT);
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== LOCK_NOT_AVAILABLE) throw err;
      if (attempt === LOCK_ATTEMPTS) {
        throw new Error(
          `Migration ${m.name} could not lock a table in ${LOCK_ATTEMPTS} attempts: a long transaction holds it ` +
            '(pg_stat_activity shows which); the next start tries again',
          { cause: err },
        );
      }
      // Spread out, so that instances starting together do not queue up at the same moments.
      const delayMs = Math.min(2_000, attempt * 200) + Math.random() * 200;
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}

export async function loadMigrations(dir: string): Promise<Migration[]> {
  const names = (await fs.readdir(dir)).filter((f) => f.endsWith('.sql')).sort();
  return Promise.all(
    names.map(async (name) => {
      const match = /^(\d+)_[\w-]+\.sql$/.exec(name);
      if (!match) throw new Error(`Migration file ${name} must be named like 005_what_it_does.sql`);
      const sql = await fs.readFile(path.join(dir, name), 'utf8');
      return {
        version: match[1],
        name,
        sql,
        checksum: createHash('sha256').update(sql).digest('hex'),
        transactional: !NO_TRANSACTION.test(sql),
      };
    }),
  );
}

/** Statements of a no-transaction file: comment lines dropped, split at semicolons that end a line. */
export function splitStatements(sql: string): string[] {
  return sql
    .split('\n')
    .filter((line) => !/^\s*--/.test(line))
    .join('\n')
    .split(/;\s*$/m)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}
