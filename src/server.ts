import { createServer, type ServerResponse, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import dotenv from 'dotenv';
import type { S3Client } from '@aws-sdk/client-s3';
import { createApp, unmetExpectations } from './app';
import { BackgroundJobs } from './background';
import { type Config, ConfigError, IDLE_TIMEOUT_MS, loadConfig } from './config';
import { createDb, type Db } from './db';
import { migrate } from './db/migrate';
import { clientErrorHandler, connectHandler } from './http/client-error';
import { DataDirLostError, DataDirSyncError, explain } from './errors';
import { createLogger, type Logger } from './logger';
import { Metrics } from './metrics';
import { createServices, type Services } from './services';
import { createStorage } from './storage';
import { refusalAtStart } from './storage/startup-check';
import { startupWarnings } from './startup-warnings';
import { within } from './timeout';

export interface RunningService {
  readonly server: Server;
  readonly port: number;
  readonly services: Services;
  readonly jobs: BackgroundJobs;
  /** Resolves with what makes the service unable to go on (the embedded database's directory lost), if ever. */
  readonly fatal: Promise<Error>;
  /**
   * Shuts down gracefully: stops accepting connections, lets requests in flight finish for up to SHUTDOWN_TIMEOUT
   * (then closes their connections), waits for uploads and file removals under way, stops the background job, and
   * closes the database. Resolves when all of that is done; never rejects for a request that was cut off.
   */
  close(): Promise<void>;
}

/** After the connections are closed: how long uploads being discarded and removals under way get to finish. */
const CLEANUP_GRACE_MS = 3_000;

/**
 * Builds the dependencies from config, brings the database schema up to date, listens, and starts the background
 * job. Tests start it the same way, with a database (`db`) or S3 client they made themselves.
 */
export async function startService(
  config: Config,
  logger: Logger,
  injected: { db?: Db; s3Client?: S3Client; startupRechecksMs?: number[] } = {},
): Promise<RunningService> {
  let reportFatal!: (err: Error) => void;
  const fatal = new Promise<Error>((resolve) => (reportFatal = resolve));
  const onDbError = (err: Error) => {
    // Fatal: the process stops (a sync failure exits at once, after this line: DurableNodeFS).
    if (err instanceof DataDirLostError || err instanceof DataDirSyncError) {
      logger.fatal({ err }, err.message);
      reportFatal(err);
    } else {
      logger.error({ err }, 'database connection error');
    }
  };
  const db = injected.db ?? (await createDb(config, onDbError));
  try {
    const { applied, changed } = await migrate(db);
    if (applied.length > 0) logger.info({ applied }, 'database migrations applied');
    if (changed.length > 0) logger.warn({ changed }, 'applied migration files have changed since; they are not run again');
  } catch (err) {
    if (!injected.db) await db.close();
    throw err;
  }
  const metrics = new Metrics();
  const storage = createStorage(config, injected.s3Client, { metrics });
  // A store that refuses this service (a wrong bucket, endpoint or credentials) fails the start, so that a deploy
  // with it never goes live: taken for an outage, it would be served "degraded", uploads kept on a disk the next
  // deploy replaces. A store that does not answer is an outage: the service starts (README, Reliability).
  const refused = await refusalAtStart(storage, injected.startupRechecksMs);
  if (refused) {
    storage.close();
    if (!injected.db) await db.close();
    throw refused;
  }
  const services = createServices({ config, db, storage, logger, metrics });
  let shuttingDown = false;
  const unanswered = new Set<ServerResponse>();
  const app = createApp({ config, db, storage, logger, services });
  // While shutting down, every response asks its client to reconnect elsewhere rather than reuse this connection:
  // those begun after SIGTERM, and those in flight then, which the shutdown marks (below). A plain handler, not a
  // second Express app around the first: that one would route every request twice and add its own headers.
  // requireHostHeader: app.ts refuses a request without Host itself, with the API's JSON error.
  // connectionsCheckingInterval: how often Node looks for headers past headersTimeout (below); at its default of
  // 30 s, slow headers were cut off after 66 to 96 s.
  const server = createServer({ requireHostHeader: false, connectionsCheckingInterval: 5_000 }, (req, res) => {
    if (shuttingDown) res.setHeader('Connection', 'close');
    unanswered.add(res);
    res.once('close', () => unanswered.delete(res));
    app(req, res);
  });
  server.on('clientError', clientErrorHandler(config.corsOrigins, logger));
  server.on('connect', connectHandler(config.corsOrigins, logger));
  // An Expect other than 100-continue: the app answers it (417, app.ts), where Node would send an empty 417.
  server.on('checkExpectation', (req, res) => {
    unmetExpectations.add(req);
    server.emit('request', req, res);
  });
  server.listen(config.port);
  await once(server, 'listening');
  // Uploads of large files take long: no limit on a whole request, only on a socket that goes quiet, and on a body
  // that comes too slowly (http/body-rate.ts), or a file read too slowly (http/send-file.ts).
  server.requestTimeout = 0;
  server.setTimeout(IDLE_TIMEOUT_MS);
  // Below the process's limit on open files, which a flood of connections would otherwise reach: the service then
  // could open no upload's file, no connection to S3 or the database, and failed every request it had. Beyond it,
  // new connections are closed at once and those already open go on.
  server.maxConnections = config.reliability.maxConnections;
  server.on('drop', warnDropped(logger, config.reliability.maxConnections));
  // Longer than the idle timeout of the proxies in front (Render, Railway, load balancers), so a proxy never
  // reuses a connection this server is closing, which the client would see as a 502.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;

  const jobs = new BackgroundJobs(
    { local: storage.local, documents: services.documents, deletions: services.deletions, sync: services.sync, logger },
    config.reliability.syncIntervalMs,
  );
  jobs.start();

  const port = (server.address() as AddressInfo).port;
  logger.info(
    { port, storage: storage.primary.name, database: db.kind, uploadDir: config.storage.uploadDir },
    'document storage listening',
  );
  let closing: Promise<void> | undefined;
  return {
    server,
    port,
    services,
    jobs,
    fatal,
    close() {
      closing ??= (async () => {
        shuttingDown = true;
        for (const res of unanswered) if (!res.headersSent) res.setHeader('Connection', 'close');
        const stopped = jobs.stop();
        const drained = once(server, 'close');
        server.close(); // also closes idle keep-alive connections (Node 19+)
        if (!(await settlesWithin(drained, config.reliability.shutdownTimeoutMs))) {
          logger.warn(
            { shutdownTimeoutMs: config.reliability.shutdownTimeoutMs },
            'requests still in flight at SHUTDOWN_TIMEOUT; closing their connections',
          );
          server.closeAllConnections();
          await drained;
        }
        // Cut-off uploads discard what they stored; removals after a delete finish or stay queued.
        await services.tasks.idle(CLEANUP_GRACE_MS);
        await settlesWithin(stopped, CLEANUP_GRACE_MS);
        storage.close();
        if (!injected.db) await db.close();
        logger.info('shut down');
      })();
      return closing;
    },
  };
}

/** Logs the first connection closed at MAX_CONNECTIONS at once, then how many more once a minute while they go on. */
function warnDropped(logger: Logger, maxConnections: number): () => void {
  let dropped = 0;
  let timer: NodeJS.Timeout | undefined;
  const report = () => {
    timer = undefined;
    if (dropped === 0) return;
    logger.warn({ dropped, maxConnections }, 'connections closed on arrival in the last minute: MAX_CONNECTIONS were open');
    dropped = 0;
    timer = setTimeout(report, 60_000).unref();
  };
  return () => {
    if (timer) {
      dropped++;
      return;
    }
    logger.warn({ maxConnections }, 'MAX_CONNECTIONS reached: new connections are closed on arrival');
    timer = setTimeout(report, 60_000).unref();
  };
}

/** Whether `promise` settles, either way, within `ms`. */
const settlesWithin = (promise: Promise<unknown>, ms: number) => within(promise.then(() => true, () => true), ms, false);

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
  // Readable lines for a developer at a terminal; JSON everywhere else (platforms, log collectors, files).
  const logger = createLogger(config.logLevel, undefined, { pretty: config.nodeEnv === 'development' && Boolean(process.stdout.isTTY) });
  for (const w of startupWarnings(config)) logger[w.level](w.fields ?? {}, w.message);
  const service = await startService(config, logger);
  const stop = (signal: string, code = 0) => {
    logger.info({ signal }, 'shutting down');
    service.close().then(
      () => process.exit(code),
      (err) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  // A service whose database is gone for good exits, so that the platform restarts it, rather than answer 503s.
  void service.fatal.then(() => stop('fatal', 1));
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

if (require.main === module) {
  main().catch((err) => {
    // With its causes: "the database is not available" says what, "connect ECONNREFUSED 10.0.0.5:5432" says why.
    console.error('startup failed:', explain(err));
    process.exit(1);
  });
}
