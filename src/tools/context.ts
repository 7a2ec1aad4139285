import path from 'node:path';
import dotenv from 'dotenv';
import pino from 'pino';
import { type Config, ConfigError, loadConfig } from '../config';
import { createDb, type Db } from '../db';
import { DataDirInUseError } from '../errors';
import { pendingMigrations } from '../db/migrate';
import { FileDeletions } from '../documents/deletions';
import { createLogger, type Logger } from '../logger';
import { createStorage, type Storage } from '../storage';

/** What an ops tool works with: the service's own configuration, database (upgraded by the service) and storage. */
export interface ToolContext {
  config: Config;
  db: Db;
  storage: Storage;
  logger: Logger;
  deletions: FileDeletions;
  close(): Promise<void>;
}

/**
 * Opens everything from the environment, exactly as the service does (a .env file included). Tests pass `env` and
 * an open `db`. Logs go to stderr, so a tool's report on stdout stays readable and can be piped.
 */
export async function openToolContext(options: { env?: NodeJS.ProcessEnv; db?: Db; logLevel?: string } = {}): Promise<ToolContext> {
  if (!options.env) dotenv.config({ quiet: true });
  let config: Config;
  try {
    config = loadConfig(options.env ?? process.env);
  } catch (err) {
    if (err instanceof ConfigError) throw new ToolError(err.message);
    throw err;
  }
  const logger = createLogger(options.logLevel ?? (config.logLevel === 'info' ? 'warn' : config.logLevel), pino.destination(2));
  // The service holds PGlite's data directory for as long as it runs, not for a moment: waiting for it is pointless.
  // No cause: the lock library's own words would only repeat the message, and the tool prints causes.
  const db =
    options.db ??
    (await createDb(config, (err) => logger.error({ err }, 'database connection error'), { lockRetries: 0 }).catch((err: unknown) => {
      if (err instanceof DataDirInUseError) {
        throw new DataDirInUseError(
          err.dataDir,
          ' (the service, or another tool; one that has just stopped lets go within 30 s): stop it to run this tool, or run both on Postgres (DATABASE_URL)',
        );
      }
      throw err;
    }));
  // The tools check and move; they do not change the schema. A database the service has not upgraded is either not
  // the service's (a wrong DATABASE_URL, where a check would create its tables) or the CRM's before the service's
  // first start (where even a dry run would upgrade it).
  try {
    const pending = await pendingMigrations(db);
    if (pending.length > 0) {
      throw new ToolError(
        `The database is not upgraded for this service: ${pending.length} of its migrations are not applied (${pending[0]}...). ` +
          'Check DATABASE_URL; if it is right, start the service once, which applies them, then run this tool.',
      );
    }
  } catch (err) {
    if (!options.db) await db.close();
    throw refusal(err, config) ?? err;
  }
  const storage = createStorage(config);
  const deletions = new FileDeletions({ db, storage, logger });
  return {
    config,
    db,
    storage,
    logger,
    deletions,
    async close() {
      storage.close();
      if (!options.db) await db.close();
    },
  };
}

/**
 * The database a tool reads, as ops would recognise it, without the password: the one thing to check before
 * trusting a report of files that no row claims.
 */
export function describeDatabase(config: Config): string {
  if (!config.database.url) return `the embedded PGlite in ${path.resolve(config.database.pgliteDataDir)}`;
  const url = new URL(config.database.url);
  return `${url.protocol}//${url.username ? `${decodeURIComponent(url.username)}@` : ''}${url.host}${url.pathname}`;
}

/** Where a tool looks, in one line: its database and stores. */
export function describeTarget(config: Config): string {
  const s3 = config.storage.s3;
  const stores = [`UPLOAD_DIR ${config.storage.uploadDir}`, ...(s3 ? [`s3://${s3.bucket}/${s3.prefix ? `${s3.prefix}/` : ''}${s3.endpoint ? ` at ${s3.endpoint}` : ''}`] : [])];
  return `database ${describeDatabase(config)}; ${stores.join(', ')}`;
}

/**
 * A database that refuses the tool for good (no such database, wrong password, no permission) is a configuration
 * error, exit code 2 with one line, as for the service; one that does not answer is not (exit code 1: try again).
 */
function refusal(err: unknown, config: Config): ToolError | undefined {
  const code = (err as { code?: unknown })?.code;
  if (typeof code !== 'string' || !['3D000', '28000', '28P01', '42501'].includes(code)) return undefined;
  return new ToolError(`The database refused this tool (${describeDatabase(config)}): ${(err as Error).message}. Check DATABASE_URL.`);
}

/** What to set when a tool needs S3 and it is not configured. */
export const S3_NEEDED = 'set AWS_S3_BUCKET_NAME and its credentials (see S3_SETUP_GUIDE.md)';

/** A failure the tool reports in one line and exits 2 for: bad arguments or configuration. */
export class ToolError extends Error {}

/** --help: the usage, on stdout, and exit code 0. */
export class HelpRequested extends Error {
  constructor(readonly usage: string) {
    super('help requested');
  }
}
