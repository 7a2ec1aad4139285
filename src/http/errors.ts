import type { ErrorRequestHandler, RequestHandler, Response } from 'express';
import type {} from 'pino-http'; // req.log
import { AppError, BusyError, explain, NotFoundError } from '../errors';
import { stopReading } from './stop-reading';

export const notFound: RequestHandler = (req, _res, next) =>
  next(new NotFoundError('ROUTE_NOT_FOUND', `No route ${req.method} ${req.path}`));

/** Clearer codes and messages for what express.json reports about a request body. */
const BODY_ERRORS: Record<string, [string, string]> = {
  'entity.parse.failed': ['INVALID_JSON', 'The request body is not valid JSON'],
  'entity.too.large': ['BODY_TOO_LARGE', 'The request body is too large'],
  'encoding.unsupported': ['UNSUPPORTED_ENCODING', 'The request body encoding is not supported'],
  'charset.unsupported': ['UNSUPPORTED_CHARSET', 'The request body charset is not supported'],
  'request.aborted': ['REQUEST_ABORTED', 'The request was aborted'],
};
const CODES_BY_STATUS: Record<number, string> = { 413: 'BODY_TOO_LARGE', 415: 'UNSUPPORTED_MEDIA_TYPE' };

export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  // Express and its body parsers mark the request's own faults (malformed JSON, a path with a broken %-escape, a
  // body that is not the gzip it claims) with a 4xx status; they stay the client's.
  const { status, expose, message, type } = (err ?? {}) as { status?: unknown; expose?: unknown; message?: unknown; type?: unknown };
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const [code, text] = BODY_ERRORS[String(type)] ?? [
      CODES_BY_STATUS[status] ?? 'BAD_REQUEST',
      expose !== false && typeof message === 'string' ? message : 'The request could not be read',
    ];
    return new AppError(code, status, text, { cause: err });
  }
  return new AppError('INTERNAL_ERROR', 500, 'Something went wrong on our side; it has been logged', { cause: err });
}

/**
 * The one place errors become responses: `{"error": {"code", "message"}}` with the error's status and headers.
 * Server faults are logged with their cause; the client gets the message only, never a stack. A body left unread is
 * stopped, and read after the answer within `lingerBytes` (stopReading).
 */
export function errorHandler(lingerBytes: number): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const error = toAppError(err);
    // A refusal for want of room says what was full and for how long; its stack says nothing (see BusyError).
    if (error instanceof BusyError) req.log?.warn({ code: error.code, reason: explain(error.cause) }, error.message);
    else if (error.status >= 500) req.log?.error({ err, cause: error.cause }, error.message);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    // Refused before its body was read (no token, a bad id, too large by its Content-Length, no such route).
    stopReading(req, res, lingerBytes);
    sendError(res, error);
  };
}

/** `{"error": {"code", "message"}}`, with the error's status and headers. */
export function sendError(res: Response, error: AppError): void {
  // An error is about this moment (a file missing, a store down), never to be kept: a browser that stored a 404
  // for a document would go on showing it.
  res
    .status(error.status)
    .set({ 'Cache-Control': 'no-store', ...error.headers })
    .json({ error: { code: error.code, message: error.message } });
}
