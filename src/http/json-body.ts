import express, { type RequestHandler } from 'express';
import bytes from 'bytes';
import { AppError, UnsupportedMediaTypeError } from '../errors';

/**
 * express.json, with two refusals made before it reads a byte. A body that is not JSON gets 415 rather than being
 * skipped, which would report the fields it holds as missing. A body whose Content-Length is over the limit gets 413
 * at once: express.json would read all of it to throw it away before answering (as it still does for a chunked
 * body without a Content-Length, which it can only find too large on the way; browsers send the length).
 */
export function jsonBody(limit: string): RequestHandler[] {
  const max = bytes.parse(limit)!;
  const check: RequestHandler = (req, _res, next) => {
    // req.is answers null for a request without a body, which the route's own validation reports.
    if (req.is('application/json') === false) {
      return next(new UnsupportedMediaTypeError('UNSUPPORTED_MEDIA_TYPE', 'Send the body as JSON, with Content-Type: application/json'));
    }
    if (Number(req.get('content-length')) > max) {
      return next(new AppError('BODY_TOO_LARGE', 413, `The request body is larger than the ${bytes.format(max)} allowed`));
    }
    next();
  };
  return [check, express.json({ limit: max })];
}
