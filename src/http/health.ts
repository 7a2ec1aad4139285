import { Router } from 'express';
import type { Db } from '../db';
import { MIGRATIONS_DIR, pendingMigrations } from '../db/migrate';
import { RETRY_AFTER_SECONDS } from '../errors';
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
  migrationsDir = MIGRATIONS_DIR,
}: {
  db: Db;
  storage: Storage;
  s3Fallback: 'local' | 'fail';
  migrationsDir?: string;
}): Router {
  const router = Router();
  let migrated = false;

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
    const [database, migrations, store] = await Promise.all([
      db.ping(2_000),
      // Once every migration is seen applied, it stays so for this process's life (the files do not change).
      migrated || withTimeout(pendingMigrations(db, migrationsDir).then((pending) => (migrated = pending.length === 0))),
      storageCheck(),
    ]);
    return { database: database ? 'ok' : 'failing', migrations: migrations ? 'ok' : 'failing', storage: store };
  });

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
  async function storageCheck(): Promise<Check> {
    if (await withTimeout(storage.primary.check().then(() => true))) return 'ok';
    if (storage.primary.name !== 's3' || s3Fallback !== 'local') return 'failing';
    return (await withTimeout(storage.local.check().then(() => true))) ? 'degraded' : 'failing';
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

/** False when `check` fails or takes longer than 3 s: a readiness probe must answer in time itself. */
const withTimeout = (check: Promise<boolean>) => within(check, 3_000, false);
