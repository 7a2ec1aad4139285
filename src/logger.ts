import { AsyncLocalStorage } from 'node:async_hooks';
import pino, { type Logger } from 'pino';

export type { Logger };

/** Paths that may carry credentials; pino replaces them before a line is written. */
export const REDACT = [
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  '*.accessKeyId',
  '*.secretAccessKey',
  // S3 names the access key in errors about it (InvalidAccessKeyId, SignatureDoesNotMatch), which are logged with
  // their causes: an error's own fields, its cause's, and its cause's cause.
  '*.AWSAccessKeyId',
  '*.*.AWSAccessKeyId',
  '*.*.*.AWSAccessKeyId',
  '*.jwtSecret',
  '*.tokens',
];

/** Query parameters whose values are credentials, should a client put one in a URL (the service reads none there). */
const SECRET_PARAM = /token|passw|secret|signature|credential|api[-_]?key|access[-_]?key|auth|session|jwt/i;

/**
 * A request as pino-http serializes it, with the values of credential-like query parameters replaced in its `url`
 * and `query`: a token a client sent as `?access_token=` would otherwise be written with every line of its request.
 */
export function redactRequest<T extends { url?: string; query?: Record<string, unknown> }>(req: T): T {
  const at = req.url?.indexOf('?') ?? -1;
  if (req.url && at !== -1) {
    const params = new URLSearchParams(req.url.slice(at + 1));
    let changed = false;
    for (const name of new Set(params.keys())) {
      if (SECRET_PARAM.test(name)) {
        params.set(name, '[redacted]');
        changed = true;
      }
    }
    if (changed) req.url = `${req.url.slice(0, at)}?${params.toString().replaceAll('%5Bredacted%5D', '[redacted]')}`;
  }
  if (req.query && Object.keys(req.query).some((name) => SECRET_PARAM.test(name))) {
    req.query = Object.fromEntries(Object.entries(req.query).map(([name, value]) => [name, SECRET_PARAM.test(name) ? '[redacted]' : value]));
  }
  return req;
}

/** The request being handled, in the async context of everything done for it (see app.ts). */
export const requestContext = new AsyncLocalStorage<{ requestId: string }>();

/**
 * JSON lines for production; with `pretty` (development on a terminal), readable lines through pino-pretty, a
 * development dependency: where it is not installed (a production image run with NODE_ENV=development), JSON.
 * Redaction applies either way, before a line is formatted.
 */
export function createLogger(level: string, destination?: pino.DestinationStream, { pretty = false } = {}): Logger {
  const options: pino.LoggerOptions = {
    level,
    redact: { paths: REDACT, censor: '[redacted]' },
    // Every line written while a request is handled carries its id, from whichever module logs it.
    mixin: () => {
      const requestId = requestContext.getStore()?.requestId;
      return requestId ? { requestId } : {};
    },
  };
  if (pretty) {
    const prettyStream = loadPretty();
    if (prettyStream) {
      return pino(options, prettyStream({ destination: destination ?? 1, colorize: !destination, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', sync: true }));
    }
  }
  return pino(options, destination);
}

type PrettyFactory = (options: Record<string, unknown>) => pino.DestinationStream;

function loadPretty(): PrettyFactory | undefined {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('pino-pretty') as PrettyFactory;
  } catch {
    return undefined;
  }
}
