import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Mutex, PGlite, type Transaction } from '@electric-sql/pglite';
import lockfile from 'proper-lockfile';
import { DatabaseBusyError, DatabaseUnavailableError, DataDirInUseError, DataDirLostError, DataDirSyncError } from '../errors';
import { Gate } from '../gate';
import type { Db, Queryable, Row, Session } from './db';
import { ping } from './pg';
import { DURABLE_START_PARAMS, DurableNodeFS, syncTree } from './pglite-durable';

function translate(err: unknown): never {
  // PGlite runs in this process: the only way for it to be unreachable is to have been closed.
  if (err instanceof Error && /PGlite is clos/.test(err.message)) throw new DatabaseUnavailableError(err, { maybeApplied: false });
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
 * Opens the embedded database. `dataDir` undefined or 'memory://' keeps it in memory (tests). A database not made
 * yet is made from `template` when given (tests): a dump of a new cluster (PGlite's dumpDataDir), which loads in
 * under a second where making the cluster takes several. A data directory is locked for as long as it is open:
 * PGlite itself does not stop a second process from opening it, and two would corrupt it (a redeploy that starts
 * the new instance before the old one has stopped, on one volume).
 */
export async function createPgliteDb(
  dataDir?: string,
  {
    onError,
    lockRetries = 40,
    template,
    queueTimeoutMs = 10_000,
  }: { onError?: (err: Error) => void; lockRetries?: number; template?: Blob; queueTimeoutMs?: number } = {},
): Promise<Db> {
  if (!dataDir || dataDir.startsWith('memory://')) return wrapPglite(await PGlite.create(dataDir, { loadDataDir: template }), queueTimeoutMs);
  await fs.mkdir(dataDir, { recursive: true });
  let release: () => Promise<void>;
  // Once the lock is lost (not refreshed for LOCK_STALE_MS: a stalled process, a volume that stopped answering; or
  // taken over), another process may open the directory: this one stops writing to it at once, and says so.
  let lost: DataDirLostError | undefined;
  let opened: PGlite | undefined;
  const onLost = (err: Error) => {
    lost = new DataDirLostError(dataDir, { cause: err });
    opened?.close().catch(() => undefined);
    onError?.(lost);
  };
  for (let attempt = 0; ; attempt++) {
    await releaseIfOwnerDied(dataDir);
    try {
      release = await lockfile.lock(dataDir, {
        // Refreshed every LOCK_UPDATE_MS; a lock left by a process that died is taken over once stale.
        stale: LOCK_STALE_MS,
        update: LOCK_UPDATE_MS,
        retries: 0,
        onCompromised: onLost,
      });
      break;
    } catch (err) {
      // An old instance still shutting down gets lockRetries seconds to let go.
      if ((err as { code?: string }).code !== 'ELOCKED') throw err;
      if (attempt >= lockRetries) throw new DataDirInUseError(dataDir, '', { cause: err });
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
  }
  heldHere.add(dataDir);
  await fs.writeFile(ownerFile(dataDir), JSON.stringify({ pid: process.pid, hostname: os.hostname() }));
  const unlock = async () => {
    // Gone before the lock is: an owner file left behind always names a process that crashed. Once the lock is
    // lost, the file may be the next owner's.
    if (!lost) await fs.rm(ownerFile(dataDir), { force: true });
    heldHere.delete(dataDir);
    await release();
  };
  try {
    const made = await fs.access(path.join(dataDir, 'PG_VERSION')).then(() => true, () => false);
    const durable = new DurableNodeFS(dataDir, (err) => onError?.(new DataDirSyncError(dataDir, { cause: err })));
    opened = await PGlite.create({ fs: durable, startParams: DURABLE_START_PARAMS, loadDataDir: made ? undefined : template });
    // A new cluster reaches the disk before anything is stored in it. Not one made from a template, which only tests
    // use: syncing its files took 3 s per test database.
    if (!made && !template) await syncTree(dataDir);
    if (lost) throw lost;
    return wrapPglite(opened, queueTimeoutMs, unlock);
  } catch (err) {
    await opened?.close().catch(() => undefined);
    await unlock();
    throw err;
  }
}

/** A lock held in this process cannot be lost with a connection: its signal never aborts. */
const NEVER_LOST = new AbortController().signal;

const LOCK_STALE_MS = 30_000;
const LOCK_UPDATE_MS = 5_000;
/** A live holder refreshes its lock every LOCK_UPDATE_MS; one not refreshed for this long has stopped doing so. */
const UNREFRESHED_MS = LOCK_UPDATE_MS + 2_000;

/** Data directories this process holds open: their owner file names this very process, and that is no crash. */
const heldHere = new Set<string>();

const ownerFile = (dataDir: string) => path.join(dataDir, 'document-store.owner.json');

/**
 * A process killed while it held the data directory (a crash, an OOM kill) leaves its lock behind, which would
 * hold up the restart until the lock goes stale (30 s). The holder's pid is recorded beside the data: when that
 * process is gone from this machine (or is this very process, restarted with the same pid, as PID 1 in a
 * container) and its lock has not been refreshed for UNREFRESHED_MS, the lock is released. A holder on another
 * machine is waited for until its lock is stale.
 */
async function releaseIfOwnerDied(dataDir: string): Promise<void> {
  // Both must hold: the lock is no longer refreshed, and its owner's pid is gone (a pid alone can mislead across
  // pid namespaces, and the owner file of a crashed holder is still there for a moment after a new one locks).
  const lock = await fs.stat(`${dataDir}.lock`).catch(() => undefined);
  if (!lock || Date.now() - lock.mtimeMs < UNREFRESHED_MS) return;
  let owner: { pid?: unknown; hostname?: unknown };
  try {
    owner = JSON.parse(await fs.readFile(ownerFile(dataDir), 'utf8'));
  } catch {
    return;
  }
  if (owner.hostname !== os.hostname() || typeof owner.pid !== 'number') return;
  if (owner.pid === process.pid ? heldHere.has(dataDir) : isAlive(owner.pid)) return;
  await fs.rm(`${dataDir}.lock`, { recursive: true, force: true });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // alive, owned by another user
  }
}

function wrapPglite(pglite: PGlite, queueTimeoutMs: number, release?: () => Promise<void>): Db {
  // PGlite is one session inside one process (its data directory cannot be opened twice), so a lock held by this
  // process is a lock for every user of the database. pg_advisory_lock would not do: within one session it is
  // re-entrant, and every caller here shares that session.
  const locks = new Map<string, Mutex>();
  const lockNamed = (name: string) => {
    let lock = locks.get(name);
    if (!lock) locks.set(name, (lock = new Mutex()));
    return lock;
  };
  const session: Session = {
    ...queryable(pglite),
    // PGlite's query() waits while a transaction holds its connection, so concurrent requests never see each
    // other's uncommitted statements.
    transaction: (fn) => pglite.transaction((tx) => fn(queryable(tx))).catch(translate),
  };
  // PGlite runs one statement or transaction at a time, and lets the rest wait for as long as it takes. Requests
  // wait here instead, in order, for at most QUEUE_TIMEOUT, as they wait for a pool connection on Postgres: under a
  // burst they are refused as busy rather than answered ever later, and ops see the line (admission_* metrics).
  // The session withLock hands out goes straight to PGlite (the migrator's statements, before the service listens);
  // the background job's own queries wait here like any request's, as they wait for the pool on Postgres.
  const connection = new Gate(1, queueTimeoutMs, (cause) => new DatabaseBusyError({ cause }));
  return {
    kind: 'pglite',
    query: <T = Row>(sql: string, params?: readonly unknown[]) => connection.run(() => session.query<T>(sql, params)),
    exec: (sql) => connection.run(() => session.exec(sql)),
    transaction: (fn) => connection.run(() => session.transaction(fn)),
    gates: { database_connections: connection },
    withLock: (name, fn) => lockNamed(name).runExclusive(() => fn(session, NEVER_LOST)),
    tryWithLock: async (name, fn) => {
      const lock = lockNamed(name);
      return lock.isLocked() ? undefined : lock.runExclusive(() => fn(session, NEVER_LOST));
    },
    ping: (timeoutMs) => ping(() => pglite.query('SELECT 1'), timeoutMs),
    close: async () => {
      if (!pglite.closed) await pglite.close();
      await release?.().catch(() => undefined);
    },
  };
}
