import path from 'node:path';
import bytes from 'bytes';
import ms from 'ms';
import { z } from 'zod';
import { DEFAULT_ALLOWED_TYPES, isMimeType } from './documents/file-types';
import { isValidKey } from './storage/driver';

export type StorageName = 'local' | 's3';

/**
 * How long a connection may sit idle: a client's socket on the HTTP server, and an S3 download's socket while its
 * client is slow to read. Uploads and downloads of large files take long; only silence ends them.
 */
export const IDLE_TIMEOUT_MS = 120_000;

/**
 * How long the rest of a form may take once its file is stored (README, Errors). The file is stored under its final
 * name when its part ends, and its row written only when the form does: without a bound, a client pausing in a field
 * after the file kept a stored file without a row as long as it liked, which storage:verify --fix would take for an
 * orphan (tools/removals.ts). The fields after a file are at most 10 of 16 KiB.
 */
export const FORM_TAIL_MS = 60_000;

export interface S3Config {
  readonly bucket: string;
  readonly region: string;
  /** Prefix of every key, without leading or trailing slash; '' puts keys at the bucket's root. */
  readonly prefix: string;
  /** Set for S3-compatible stores (R2, B2, MinIO); unset means AWS. */
  readonly endpoint?: string;
  readonly forcePathStyle: boolean;
  /** Both or neither; neither means the SDK's default chain (instance role, AWS_PROFILE, ...). */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
  /** How long one S3 request may take to be answered (its body may stream for longer). */
  readonly timeoutMs: number;
  /** Attempts per S3 request, the first included; retries back off exponentially with jitter. */
  readonly maxAttempts: number;
  /** Connections to S3 per pool: one pool for downloads, one for everything else. */
  readonly maxSockets: number;
  /** Bytes of upload parts held in memory at once across all uploads to S3; beyond it uploads queue. */
  readonly uploadMemory: number;
}

export interface Config {
  readonly nodeEnv: string;
  readonly port: number;
  readonly logLevel: string;
  readonly database: {
    /** Postgres connection string; unset means the embedded PGlite in pgliteDataDir. */
    readonly url?: string;
    readonly pgliteDataDir: string;
    /** Connections to Postgres; requests beyond them queue (QUEUE_TIMEOUT). */
    readonly poolSize: number;
  };
  readonly storage: {
    /** The driver new uploads go to. Files already stored elsewhere stay readable (see storage/index.ts). */
    readonly driver: StorageName;
    /** The local driver's root, and where files uploaded before S3 lie. Absolute. */
    readonly uploadDir: string;
    readonly s3?: S3Config;
  };
  readonly uploads: {
    readonly maxBytes: number;
    readonly allowedTypes: readonly string[];
  };
  readonly auth: {
    readonly tokens: readonly string[];
    readonly jwtSecret?: string;
    /** When set, a JWT must name it in `aud` (and `jwtIssuer` in `iss`): one signed for another purpose is refused. */
    readonly jwtAudience?: string;
    readonly jwtIssuer?: string;
    /** True when neither tokens nor a JWT secret are set: every /api route is open. */
    readonly open: boolean;
  };
  /** Origins allowed to call the API from a browser; empty means no CORS headers at all. */
  readonly corsOrigins: readonly string[];
  readonly reliability: {
    /** With S3 as the primary store: where an upload goes when S3 fails. 'local' keeps it on disk to sync later. */
    readonly s3Fallback: 'local' | 'fail';
    /** How often the background job syncs fallback files to S3 and retries file deletions. */
    readonly syncIntervalMs: number;
    /** How long in-flight requests get to finish after SIGTERM before connections are closed. */
    readonly shutdownTimeoutMs: number;
    /**
     * How long a request waits for room (upload memory, an S3 download connection, a database connection) before
     * it is refused with 503 and Retry-After.
     */
    readonly queueTimeoutMs: number;
    /** Client connections held open at once; beyond it new ones are closed at once. */
    readonly maxConnections: number;
  };
}

export class ConfigError extends Error {}

// An empty value means unset: ops copy .env.example, which lists every variable with nothing after the '='.
const optional = <T extends z.ZodType>(schema: T) =>
  z.preprocess((v) => (typeof v === 'string' && v.trim() === '' ? undefined : v), schema.optional());

const bool = (name: string) =>
  optional(z.string()).transform((v, ctx) => {
    if (v === undefined) return false;
    const s = v.trim().toLowerCase();
    if (s === 'true' || s === '1') return true;
    if (s === 'false' || s === '0') return false;
    ctx.addIssue({ code: 'custom', message: `${name} accepts true or false` });
    return z.NEVER;
  });

const list = optional(z.string()).transform((v) =>
  (v ?? '').split(',').map((s) => s.trim()).filter((s) => s.length > 0),
);

/** The longest timer Node keeps: a longer one fires after 1 ms, so a sync interval of 30d would run without pause. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A duration: a number of seconds, or a number with a unit (500ms, 10s, 2m), at most about 24 days. */
const duration = (name: string, fallback: string, min: number) =>
  optional(z.string()).transform((v, ctx) => {
    const text = (v ?? fallback).trim();
    // Decimals too (1.5 is 1.5 s): ms() reads a bare number as milliseconds, which would turn SHUTDOWN_TIMEOUT=2.5
    // into 2.5 ms without a word.
    const value = /^\d+(?:\.\d+)?$/.test(text) ? Number(text) * 1000 : ms(text as ms.StringValue);
    if (!Number.isFinite(value) || value < min || value > MAX_TIMER_MS) {
      ctx.addIssue({
        code: 'custom',
        message: `${name} accepts a duration such as 30s, 500ms or 2m (a bare number is seconds), from ${ms(min)} to 24d`,
      });
      return z.NEVER;
    }
    return value;
  });

/** What bytes.parse reads right: whole bytes, or a number with one of its units (500kb, 1.5gb). */
const SIZE = /^(?:\d+|\d+(?:\.\d+)?\s*(?:kb|mb|gb|tb|pb))$/i;

/** A size: a number of bytes, or a number with a unit (25mb, 1gb), at least `min` bytes. */
const size = (name: string, fallback: string, min: number) =>
  optional(z.string()).transform((v, ctx) => {
    // Checked whole before bytes.parse, which reads what it does not know as a number of bytes: 25M would be 25.
    const text = (v ?? fallback).trim();
    const n = SIZE.test(text) ? bytes.parse(text) : null;
    if (n === null || !Number.isSafeInteger(n) || n < min) {
      ctx.addIssue({ code: 'custom', message: `${name} accepts a size such as ${fallback} or 1gb, or a number of bytes, of at least ${bytes.format(min)}` });
      return z.NEVER;
    }
    return n;
  });

/** Decimal digits only: Number() also reads 0x10, 1e1 and 0b11, which no one writes for a count or a port. */
const digits = (v: string) => (/^\d+$/.test(v.trim()) ? Number(v) : Number.NaN);

const wholeNumber = (name: string, fallback: number, min: number, max: number) =>
  optional(z.string())
    .transform((v) => (v === undefined ? fallback : digits(v)))
    .refine((n) => Number.isInteger(n) && n >= min && n <= max, `${name} accepts a whole number from ${min} to ${max}`);

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const schema = z.object({
  NODE_ENV: optional(z.string())
    .transform((v) => v ?? 'development')
    // Production's checks (authentication required, Express's own) compare it exactly: a near miss would pass them by.
    .refine((v) => v === 'production' || !/^\s*prod(uction)?\s*$/i.test(v), 'NODE_ENV accepts production in lower case, as written'),
  PORT: optional(z.string())
    .transform((v) => (v === undefined ? 3000 : digits(v)))
    .refine((n) => Number.isInteger(n) && n >= 0 && n <= 65535, 'PORT accepts a port number from 0 to 65535'),
  LOG_LEVEL: optional(z.enum(LOG_LEVELS, { message: `LOG_LEVEL accepts one of ${LOG_LEVELS.join(', ')}` })),
  DATABASE_URL: optional(
    // Parsed here as pg will parse it: a port that is not a number would otherwise fail at startup as "Invalid URL".
    z.string().refine((v) => /^postgres(ql)?:\/\//.test(v) && URL.canParse(v), 'DATABASE_URL accepts a postgres:// or postgresql:// URL'),
  ),
  PGLITE_DATA_DIR: optional(z.string()),
  STORAGE_DRIVER: optional(z.enum(['s3', 'local'], { message: 'STORAGE_DRIVER accepts s3 or local' })),
  UPLOAD_DIR: optional(z.string()),
  AWS_ACCESS_KEY_ID: optional(z.string()),
  AWS_SECRET_ACCESS_KEY: optional(z.string()),
  AWS_REGION: optional(z.string()),
  AWS_S3_BUCKET_NAME: optional(
    z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'AWS_S3_BUCKET_NAME accepts an S3 bucket name (3-63 lowercase letters, digits, dots, hyphens)'),
  ),
  AWS_S3_PREFIX: optional(
    z
      .string()
      .transform((v) => v.replace(/^\/+|\/+$/g, ''))
      .refine(
        (v) => v === '' || isValidKey(v),
        'AWS_S3_PREFIX accepts folder names separated by single slashes, none starting with a dot, e.g. customer-documents',
      ),
  ),
  AWS_S3_ENDPOINT: optional(
    z.string().refine((v) => /^https?:\/\/[^/\s]+/.test(v), 'AWS_S3_ENDPOINT accepts an http:// or https:// URL'),
  ),
  AWS_S3_FORCE_PATH_STYLE: bool('AWS_S3_FORCE_PATH_STYLE'),
  MAX_UPLOAD_SIZE: size('MAX_UPLOAD_SIZE', '25mb', 1),
  ALLOWED_FILE_TYPES: list.refine(
    (types) => types.every((t) => isMimeType(t.toLowerCase())),
    'ALLOWED_FILE_TYPES accepts comma-separated MIME types such as application/pdf,image/png',
  ),
  API_TOKENS: list.refine(
    (tokens) => tokens.every((t) => t.length >= 16 && !/\s/.test(t)),
    'API_TOKENS accepts comma-separated tokens of at least 16 characters without spaces',
  ),
  JWT_SECRET: optional(z.string().min(32, 'JWT_SECRET accepts a secret of at least 32 characters (256 bits for HS256)')),
  JWT_AUDIENCE: optional(z.string()),
  JWT_ISSUER: optional(z.string()),
  AUTH_DISABLED: bool('AUTH_DISABLED'),
  S3_TIMEOUT: duration('S3_TIMEOUT', '10s', 100),
  S3_MAX_ATTEMPTS: wholeNumber('S3_MAX_ATTEMPTS', 3, 1, 10),
  S3_MAX_SOCKETS: wholeNumber('S3_MAX_SOCKETS', 256, 1, 10_000),
  // One upload holds up to three parts of at least 5 MiB each (storage/index.ts): 128mb is 8 such uploads at once, or
  // 64 of 2 MB. The bench measured a burst at the cap peaking at about 100 MB plus 1.35 times it (437 MB for 256mb).
  S3_UPLOAD_MEMORY: size('S3_UPLOAD_MEMORY', '128mb', 5 * 1024 * 1024),
  // At least 3: the sync job and a removal of a leftover copy each hold a connection for their lock and need one
  // more for their queries; with two, both could hold one each and wait for good.
  DATABASE_POOL_SIZE: wholeNumber('DATABASE_POOL_SIZE', 10, 3, 1_000),
  QUEUE_TIMEOUT: duration('QUEUE_TIMEOUT', '10s', 0),
  MAX_CONNECTIONS: wholeNumber('MAX_CONNECTIONS', 4_096, 1, 1_000_000),
  S3_FALLBACK: optional(z.enum(['local', 'fail'], { message: 'S3_FALLBACK accepts local or fail' })),
  SYNC_INTERVAL: duration('SYNC_INTERVAL', '60s', 100),
  SHUTDOWN_TIMEOUT: duration('SHUTDOWN_TIMEOUT', '25s', 0),
  CORS_ORIGINS: list
    // URL takes https://*.example.com for an origin, which no browser sends: every request would be refused.
    .refine((origins) => origins.every((o) => o === '*' || !o.includes('*')), 'CORS_ORIGINS takes no wildcard within an origin: list each origin, or * for any')
    .refine((origins) => origins.every((o) => o === '*' || o.includes('*') || isOrigin(o)), 'CORS_ORIGINS accepts comma-separated origins such as https://crm.example.com, or *'),
});

function isOrigin(value: string): boolean {
  try {
    return new URL(value).origin === value;
  } catch {
    return false;
  }
}

/**
 * Reads the configuration once, from `env` (process.env after dotenv in production; a plain object in tests).
 * Throws ConfigError naming every invalid variable and what it accepts, so a bad deploy stops at startup.
 */
export function loadConfig(env: Record<string, string | undefined>, cwd = process.cwd()): Config {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `- ${i.path.join('.') || 'config'}: ${i.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  const problems: string[] = [];

  const driver: StorageName = e.STORAGE_DRIVER ?? (e.AWS_S3_BUCKET_NAME ? 's3' : 'local');
  if (driver === 's3' && !e.AWS_S3_BUCKET_NAME) {
    problems.push('AWS_S3_BUCKET_NAME: required when STORAGE_DRIVER is s3');
  }
  if (Boolean(e.AWS_ACCESS_KEY_ID) !== Boolean(e.AWS_SECRET_ACCESS_KEY)) {
    problems.push('AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: set both, or neither to use the SDK default credential chain');
  }
  const open = e.API_TOKENS.length === 0 && !e.JWT_SECRET;
  if (open && e.NODE_ENV === 'production' && !e.AUTH_DISABLED) {
    problems.push(
      'API_TOKENS, JWT_SECRET: with NODE_ENV=production set one of them, or AUTH_DISABLED=true to run the API without authentication on purpose',
    );
  }
  const uploadDir = path.resolve(cwd, e.UPLOAD_DIR ?? './uploads');
  const pgliteDataDir = path.resolve(cwd, e.PGLITE_DATA_DIR ?? './data/pglite');
  // The database's files would lie among the documents, where storage:verify --fix removes files no row names.
  if (!e.DATABASE_URL && pgliteDataDir === uploadDir) {
    problems.push('PGLITE_DATA_DIR, UPLOAD_DIR: give the embedded database a folder of its own, e.g. UPLOAD_DIR/../pglite');
  }
  if (problems.length > 0) {
    throw new ConfigError(`Invalid configuration:\n${problems.map((p) => `- ${p}`).join('\n')}`);
  }

  const s3: S3Config | undefined = e.AWS_S3_BUCKET_NAME
    ? {
        bucket: e.AWS_S3_BUCKET_NAME,
        region: e.AWS_REGION ?? 'us-east-1',
        prefix: e.AWS_S3_PREFIX ?? 'customer-documents',
        endpoint: e.AWS_S3_ENDPOINT,
        forcePathStyle: e.AWS_S3_FORCE_PATH_STYLE,
        credentials:
          e.AWS_ACCESS_KEY_ID && e.AWS_SECRET_ACCESS_KEY
            ? { accessKeyId: e.AWS_ACCESS_KEY_ID, secretAccessKey: e.AWS_SECRET_ACCESS_KEY }
            : undefined,
        timeoutMs: e.S3_TIMEOUT,
        maxAttempts: e.S3_MAX_ATTEMPTS,
        maxSockets: e.S3_MAX_SOCKETS,
        uploadMemory: e.S3_UPLOAD_MEMORY,
      }
    : undefined;

  return deepFreeze({
    nodeEnv: e.NODE_ENV,
    port: e.PORT,
    logLevel: e.LOG_LEVEL ?? (e.NODE_ENV === 'test' ? 'silent' : 'info'),
    database: {
      url: e.DATABASE_URL,
      pgliteDataDir,
      poolSize: e.DATABASE_POOL_SIZE,
    },
    storage: { driver, uploadDir, s3 },
    uploads: {
      maxBytes: e.MAX_UPLOAD_SIZE,
      allowedTypes: e.ALLOWED_FILE_TYPES.length > 0 ? e.ALLOWED_FILE_TYPES.map((t) => t.toLowerCase()) : DEFAULT_ALLOWED_TYPES,
    },
    auth: { tokens: e.API_TOKENS, jwtSecret: e.JWT_SECRET, jwtAudience: e.JWT_AUDIENCE, jwtIssuer: e.JWT_ISSUER, open },
    corsOrigins: e.CORS_ORIGINS,
    reliability: {
      s3Fallback: e.S3_FALLBACK ?? 'local',
      syncIntervalMs: e.SYNC_INTERVAL,
      shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT,
      queueTimeoutMs: e.QUEUE_TIMEOUT,
      maxConnections: e.MAX_CONNECTIONS,
    },
  });
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
