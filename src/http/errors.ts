import type { ErrorRequestHandler, RequestHandler } from 'express';
import type {} from 'pino-http'; // req.log
import { AppError, NotFoundError } from '../errors';

export const notFound: RequestHandler = (req, _res, next) =>
  next(new NotFoundError('ROUTE_NOT_FOUND', `No route ${req.method} ${req.path}`));

/** express.json's errors: the client's malformed or oversized body, never a 500. */
const BODY_ERRORS: Record<string, [number, string, string]> = {
  'entity.parse.failed': [400, 'INVALID_JSON', 'The request body is not valid JSON'],
  'entity.too.large': [413, 'BODY_TOO_LARGE', 'The request body is too large'],
  'encoding.unsupported': [415, 'UNSUPPORTED_ENCODING', 'The request body encoding is not supported'],
  'charset.unsupported': [415, 'UNSUPPORTED_CHARSET', 'The request body charset is not supported'],
  'request.aborted': [400, 'REQUEST_ABORTED', 'The request was aborted'],
};

export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const known = BODY_ERRORS[(err as { type?: string } | undefined)?.type ?? ''];
  if (known) return new AppError(known[1], known[0], known[2], { cause: err });
  // Express and its body parsers mark the request's own faults (a path with a broken %-escape, a body that is not
  // the gzip it claims) with a 4xx status; they stay the client's.
  const { status, expose, message } = (err ?? {}) as { status?: unknown; expose?: unknown; message?: unknown };
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const text = expose !== false && typeof message === 'string' ? message : 'The request could not be read';
    const code = status === 413 ? 'BODY_TOO_LARGE' : status === 415 ? 'UNSUPPORTED_MEDIA_TYPE' : 'BAD_REQUEST';
    return new AppError(code, status, text, { cause: err });
  }
  return new AppError('INTERNAL_ERROR', 500, 'Something went wrong on our side; it has been logged', { cause: err });
}

/**
 * The one place errors become responses: `{"error": {"code", "message"}}` with the error's status and headers.
 * Server faults are logged with their cause; the client gets the message only, never a stack.
 */
export const errorHandler: ErrorRequestHandler = (err, req, res, _next) => {
  const error = toAppError(err);
  if (error.status >= 500) req.log?.error({ err, cause: error.cause }, error.message);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.status(error.status).set(error.headers).json({ error: { code: error.code, message: error.message } });
};
