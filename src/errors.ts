/**
 * Every error a client can cause, or that the service reports on purpose, is an AppError: a stable string `code`
 * the frontend can branch on, the HTTP status it maps to, and a message a person can act on. The original error
 * rides along as `cause` for the logs; it never reaches the client.
 */
export class AppError extends Error {
  readonly code: string;
  readonly status: number;
  /** Response headers the error needs, e.g. Content-Range on a 416 or WWW-Authenticate on a 401. */
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    code: string,
    status: number,
    message: string,
    options: { cause?: unknown; headers?: Record<string, string> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.status = status;
    this.headers = options.headers ?? {};
  }
}

export class BadRequestError extends AppError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, 400, message, options);
  }
}

export class UnauthorizedError extends AppError {
  constructor(code: string, message: string) {
    super(code, 401, message, { headers: { 'WWW-Authenticate': 'Bearer' } });
  }
}

export class NotFoundError extends AppError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, 404, message, options);
  }
}

export class PayloadTooLargeError extends AppError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('FILE_TOO_LARGE', 413, message, options);
  }
}

export class UnsupportedMediaTypeError extends AppError {
  constructor(code: string, message: string) {
    super(code, 415, message);
  }
}

/** Seconds a client is asked to wait before retrying a 503 (the Retry-After header). */
export const RETRY_AFTER_SECONDS = '5';

/** A dependency (database, object store) did not answer; the client may retry later. */
export class ServiceUnavailableError extends AppError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, 503, message, { ...options, headers: { 'Retry-After': RETRY_AFTER_SECONDS } });
  }
}

export class DatabaseUnavailableError extends ServiceUnavailableError {
  /**
   * Whether the statement may have taken effect: false when no connection could be made (nothing was sent); true
   * when the connection broke after the statement was sent, so it may have committed before the answer was lost.
   */
  readonly maybeApplied: boolean;

  constructor(cause: unknown, { maybeApplied = true }: { maybeApplied?: boolean } = {}) {
    super('DATABASE_UNAVAILABLE', 'The database is not available; try again shortly', { cause });
    this.maybeApplied = maybeApplied;
  }
}

/**
 * The service refused work for its own sake: the room it keeps for such work (upload memory, S3 download connections,
 * database connections) stayed full for QUEUE_TIMEOUT. Its dependencies answer; nothing is down. The error handler
 * logs it as a warning, not an error: a burst of clients is not a fault to page anyone for, and a line at error
 * level for each refused request would bury the real ones.
 */
export class BusyError extends ServiceUnavailableError {}

/**
 * Every connection to the database stayed taken by other requests for QUEUE_TIMEOUT: the database answers, but this
 * service has no connection free for the request. Nothing of it was sent.
 */
export class DatabaseBusyError extends BusyError {
  constructor(options?: { cause?: unknown }) {
    super('DATABASE_BUSY', 'The service is busy; try again shortly', options);
  }
}

/** The embedded database's data directory is open in another process; PGlite serves one process at a time. */
export class DataDirInUseError extends ServiceUnavailableError {
  constructor(readonly dataDir: string, hint = '', options?: { cause?: unknown }) {
    super('DATABASE_IN_USE', `PGLITE_DATA_DIR ${dataDir} is in use by another process; the embedded database serves one process at a time${hint}`, options);
  }
}

/** A write to the embedded database could not be synced to disk: the process stops (see DurableNodeFS). */
export class DataDirSyncError extends ServiceUnavailableError {
  constructor(readonly dataDir: string, options?: { cause?: unknown }) {
    super(
      'DATABASE_SYNC_FAILED',
      `PGLITE_DATA_DIR ${dataDir}: a write could not be synced to disk; the process stops, and its next start recovers the database from its write-ahead log`,
      options,
    );
  }
}

/** The data directory's lock was taken over or lost while this process held it open (see createPgliteDb). */
export class DataDirLostError extends ServiceUnavailableError {
  constructor(readonly dataDir: string, options?: { cause?: unknown }) {
    super(
      'DATABASE_LOST',
      `PGLITE_DATA_DIR ${dataDir}: this process lost its lock on it, and another may have opened it; the embedded database is closed rather than written by two processes`,
      options,
    );
  }
}

export const customerNotFound = (id: number | string) =>
  new NotFoundError('CUSTOMER_NOT_FOUND', `Customer ${id} does not exist`);

export const documentNotFound = (id: number | string) =>
  new NotFoundError('DOCUMENT_NOT_FOUND', `Document ${id} does not exist for this customer`);

/**
 * An error and its causes in one line: "the database is not available" says what, its cause says why (a refused
 * connection, a host that does not resolve). For ops, where a stack would bury the reason.
 */
export function explain(err: unknown): string {
  const parts: string[] = [];
  for (let e = err; e && parts.length < 5; e = (e as { cause?: unknown }).cause) {
    const message = e instanceof Error ? e.message : String(e);
    if (message && !parts.includes(message)) parts.push(message);
  }
  return parts.join(': ');
}
