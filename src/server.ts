import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import dotenv from 'dotenv';
import type { S3Client } from '@aws-sdk/client-s3';
import { createApp } from './app';
import { type Config, ConfigError, loadConfig } from './config';
import { createDb, type Db } from './db';
import { migrate } from './db/migrate';
import { createLogger, type Logger } from './logger';
import { createStorage } from './storage';

export interface RunningService {
  readonly server: Server;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Builds the dependencies from config, brings the database schema up to date, and listens. Tests start it the same
 * way, with a database (`db`) or S3 client they made themselves.
 */
export async function startService(
  config: Config,
  logger: Logger,
  injected: { db?: Db; s3Client?: S3Client } = {},
): Promise<RunningService> {
  const db = injected.db ?? (await createDb(config, (err) => logger.error({ err }, 'database connection error')));
  try {
    const { applied, changed } = await migrate(db);
    if (applied.length > 0) logger.info({ applied }, 'database migrations applied');
    if (changed.length > 0) logger.warn({ changed }, 'applied migration files have changed since; they are not run again');
  } catch (err) {
    if (!injected.db) await db.close();
    throw err;
  }
  const storage = createStorage(config, injected.s3Client);
  const app = createApp({ config, db, storage, logger });

  const server = app.listen(config.port);
  await once(server, 'listening');
  // Uploads of large files take long: no limit on a whole request, only on a socket that goes quiet.
  server.requestTimeout = 0;
  server.setTimeout(120_000);
  // Longer than the idle timeout of the proxies in front (Render, Railway, load balancers), so a proxy never
  // reuses a connection this server is closing, which the client would see as a 502.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;

  const port = (server.address() as AddressInfo).port;
  logger.info(
    { port, storage: storage.primary.name, database: db.kind, uploadDir: config.storage.uploadDir },
    'document storage listening',
  );
  return {
    server,
    port,
    async close() {
      server.close();
      server.closeIdleConnections();
      await once(server, 'close');
      if (!injected.db) await db.close();
    },
  };
}

async function main(): Promise<void> {
  dotenv.config({ quiet: true });
  let config: Config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(err.message);
    process.exit(1);
  }
  const logger = createLogger(config.logLevel);
  if (config.auth.open) {
    logger.warn('API_TOKENS and JWT_SECRET are both unset: every /api route is open to anyone who can reach it');
  }
  if (config.nodeEnv === 'production' && !config.database.url) {
    logger.warn(
      { pgliteDataDir: config.database.pgliteDataDir },
      'DATABASE_URL is unset: metadata is in the embedded database, lost with the disk on a redeploy unless PGLITE_DATA_DIR is on a persistent volume',
    );
  }
  if (config.nodeEnv === 'production' && config.storage.driver === 'local') {
    logger.warn(
      { uploadDir: config.storage.uploadDir },
      'documents are stored on local disk, lost with it on a redeploy unless UPLOAD_DIR is a persistent volume; set AWS_S3_BUCKET_NAME to use S3',
    );
  }
  const service = await startService(config, logger);
  const stop = (signal: string) => {
    logger.info({ signal }, 'shutting down');
    service.close().then(
      () => process.exit(0),
      (err) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

if (require.main === module) {
  main().catch((err) => {
    console.error('startup failed:', err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
