import { Router } from 'express';
import type { Db } from '../db';
import { MIGRATIONS_DIR, pendingMigrations } from '../db/migrate';
import { explain, RETRY_AFTER_SECONDS } from '../errors';
import type { Logger } from '../logger';
import type { Storage } from '../storage';
import { within } from '../timeout';

type Check = 'ok' | 'degraded' | 'failing';

/**
 * /health: liveness, the process answers and its database too (a restart would not help otherwise, but platforms
 * read it as such). /ready: readiness, for load balancers and deploys: the database answers, every migration is
 * applied, and the primary store can be reached and written.
 */
export function healthRouter({
  db,
  storage,
  s3Fallback,
  logger,
  migrationsDir = MIGRATIONS_DIR,
}: {
  db: Db;
  storage: Storage;
  s3Fallback: 'local' | 'fail';
  logger: Logger;
  migrationsDir?: string;
}): Router {
  const router = Router();
  let migrated = false;
  // What the last check found failing, and why: logged when that changes, not on every probe.
  let lastFailures = '';

  router.get('/health', async (_req, res) => {
    const body = { storage: storage.primary.name, database: db.kind };
    if (await db.ping(2_000)) {
      res.json({ status: 'ok', ...body });
    } else {
      res.status(503).set('Retry-After', RETRY_AFTER_SECONDS).json({
        status: 'unavailable',
        ...body,
        error: { code: 'DATABASE_UNAVAILABLE', message: 'The database does not answer' },
      });
    }
  });

  /**
   * /ready answers without a token, and each check lists the bucket: a request to S3 that AWS bills, and a round
   * trip over the internet. Probes that come at once share one check, and an answer serves for READY_MAX_AGE_MS,
   * so however often /ready is called, S3 and the database are asked at most about once a second.
   */
  const readiness = reuseFor(READY_MAX_AGE_MS, async (): Promise<Record<string, Check>> => {
    const failures: Failure[] = [];
    const [database, migrations, store] = await Promise.all([
      db.ping(2_000),
      // Once every migration is seen applied, it stays so for this process's life (the files do not change).
      migrated ||
        passes('migrations', failures, async () => {
          const pending = await pendingMigrations(db, migrationsDir);
          if (pending.length > 0) throw new Error(`${pending.length} migration(s) not applied yet`);
          migrated = true;
        }),
      storageCheck(failures),
    ]);
    if (!database) failures.push({ check: 'database', err: new Error('The database does not answer') });
    report(failures);
    return { database: database ? 'ok' : 'failing', migrations: migrations ? 'ok' : 'failing', storage: store };
  });

  /**
   * /ready's answer says only what fails (it needs no token); the log says why, once per change: a platform whose
   * health check never passes (an UPLOAD_DIR the service may not write, a bucket that does not exist) would
   * otherwise show ops an empty log.
   */
  function report(failures: Failure[]): void {
    const summary = failures.map((f) => `${f.check}: ${explain(f.err)}`).join('; ');
    if (summary === lastFailures) return;
    if (failures.length === 0) logger.info('readiness checks pass again');
    for (const { check, err } of failures) logger.warn({ check, err }, `readiness check failing: ${check}`);
    lastFailures = summary;
  }

  router.get('/ready', async (_req, res) => {
    const checks = await readiness();
    const failing = Object.keys(checks).filter((k) => checks[k] === 'failing');
    if (failing.length === 0) {
      res.json({ status: 'ready', checks });
      return;
    }
    res.status(503).set('Retry-After', RETRY_AFTER_SECONDS).json({
      status: 'unavailable',
      checks,
      error: { code: 'NOT_READY', message: `Not ready: ${failing.join(', ')} failing` },
    });
  });

  /**
   * 'degraded': S3 fails but uploads are kept on local disk meanwhile (S3_FALLBACK=local), so the instance still
   * takes uploads and stays ready; a platform that pulled it out of rotation would take it offline for nothing.
   */
  async function storageCheck(failures: Failure[]): Promise<Check> {
    if (await passes(`storage (${storage.primary.name})`, failures, () => storage.primary.check())) return 'ok';
    if (storage.primary.name !== 's3' || s3Fallback !== 'local') return 'failing';
    return (await passes('storage (local fallback)', failures, () => storage.local.check())) ? 'degraded' : 'failing';
  }

  return router;
}

/** How long one readiness answer serves later probes; platforms probe once a second at the most. */
export const READY_MAX_AGE_MS = 1_000;

/**
 * `work`'s result, shared by every call while it runs and for `maxAgeMs` after it settles; the next call after
 * that starts it again. `work` must not reject.
 */
function reuseFor<T>(maxAgeMs: number, work: () => Promise<T>): () => Promise<T> {
  let current: Promise<T> | undefined;
  // Infinity while `work` runs, so a call meanwhile shares it.
  let settledAt = Infinity;
  return () => {
    if (!current || performance.now() - settledAt >= maxAgeMs) {
      settledAt = Infinity;
      current = work().finally(() => (settledAt = performance.now()));
    }
    return current;
  };
}

interface Failure {
  check: string;
  err: unknown;
}

/**
 * Whether `check` succeeds within 3 s (a readiness probe must answer in time itself). When it does not, why is added
 * to `failures`.
 */
async function passes(check: string, failures: Failure[], work: () => Promise<unknown>): Promise<boolean> {
  const timedOut = new Error('No answer within 3 s');
  const err = await within(
    work().then(
      () => undefined,
      (e: unknown) => e ?? new Error('failed'),
    ),
    3_000,
    timedOut,
  );
  if (err === undefined) return true;
  failures.push({ check, err });
  return false;
}
