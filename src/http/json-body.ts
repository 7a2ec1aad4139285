import { isUtf8 } from 'node:buffer';
import express, { type RequestHandler } from 'express';
import bytes from 'bytes';
import { parse as parseContentType } from 'content-type';
import getRawBody from 'raw-body';
import { AppError, UnsupportedMediaTypeError } from '../errors';

/**
 * express.json, with refusals made before it reads a byte. A body that is not JSON gets 415 rather than being
 * skipped, which would report the fields it holds as missing. A body whose Content-Length is over the limit gets 413
 * at once: express.json would read all of it to throw it away before answering.
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
  return [check, chunkedJson(max), express.json({ limit: max, verify: requireUtf8 })];
}

/**
 * body-parser decodes broken UTF-8 into U+FFFD without a word: a name sent with a stray byte would be stored as
 * another name than the one sent. JSON is UTF-8 (RFC 8259); bytes that are not are refused, as the lone surrogates
 * the customer's schema refuses.
 */
const requireUtf8 = (_req: unknown, _res: unknown, body: Buffer, encoding: string) => {
  if (encoding.toLowerCase() === 'utf-8' && !isUtf8(body)) throw notUtf8();
};
const notUtf8 = () => new AppError('INVALID_JSON', 400, 'The request body is not valid UTF-8');
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A chunked body (no Content-Length) can only be found too large on the way. express.json would then read the rest
 * of it to throw it away before answering, however much a client sends. Read here instead, the same way (raw-body,
 * which express.json uses), but a body over the limit is left unread: raw-body pauses it, and the error handler
 * answers with Connection: close. express.json then skips the request, its body read. A compressed or non-UTF-8
 * chunked body, which no browser sends, is still left to express.json.
 */
function chunkedJson(max: number): RequestHandler {
  return (req, _res, next) => {
    const identity = (req.headers['content-encoding'] ?? 'identity').toLowerCase() === 'identity';
    if (req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] === undefined || !identity) return next();
    if (!declaresUtf8(req)) return next();
    getRawBody(req, { limit: max }, (err, body) => {
      // raw-body's errors carry express.json's types (entity.too.large, request.aborted): toAppError names them.
      if (err) return next(err);
      let text: string;
      try {
        // As iconv-lite decodes for express.json, a leading BOM dropped; but broken UTF-8 refused (requireUtf8).
        text = utf8.decode(body);
      } catch {
        return next(notUtf8());
      }
      try {
        // As express.json: an empty body is an empty object, and (strict) anything but an object or array is not
        // JSON here, so "x" and null get INVALID_JSON whichever way they were sent.
        if (text.length > 0 && !STRICT_START.test(text)) throw new SyntaxError('The body is not a JSON object or array');
        req.body = text.length === 0 ? {} : JSON.parse(text);
      } catch (cause) {
        return next(new AppError('INVALID_JSON', 400, 'The request body is not valid JSON', { cause }));
      }
      next();
    });
  };
}

/** What body-parser's strict mode requires: after JSON's whitespace, an object or an array. */
const STRICT_START = /^[ \t\n\r]*[{[]/;

/** Whether the Content-Type names no charset, or UTF-8. */
function declaresUtf8(req: Parameters<RequestHandler>[0]): boolean {
  try {
    const charset = parseContentType(req.headers['content-type'] ?? '').parameters.charset?.toLowerCase();
    return charset === undefined || charset === 'utf-8';
  } catch {
    return false; // a Content-Type express.json reports itself
  }
}
