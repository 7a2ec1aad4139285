import { pipeline } from 'node:stream/promises';
import type { Request, Response } from 'express';
import type {} from 'pino-http'; // req.log
import { AppError } from '../errors';
import type { ByteRange, StoredObject } from '../storage';
import { contentDisposition } from './content-disposition';
import { noneMatch } from './conditional';
import { MINIMUM_RATE, type MinimumRate, watchRate } from './rate';

/**
 * Responses whose every byte has been handed to the connection: complete when the client closes it before 'finish'
 * (one that closes the moment it has them all), and logged so (app.ts), where pino-http would say "request aborted".
 * pino-http logs at 'close', before the pipeline below reports the early close, so this is marked as bytes go out.
 */
export const sentWhole = new WeakSet<object>();

export interface FileToSend {
  fileName: string;
  mimeType: string;
  /** A strong validator of the bytes, quoted. */
  etag: string;
  disposition: 'inline' | 'attachment';
}

// No scripts, no plugins, no loads from anywhere: a served file is data, never a page of this origin.
const CSP = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'";
// Chrome and Safari refuse to run their PDF viewers in a sandboxed document, so an inline PDF goes without
// `sandbox`; default-src 'none' still forbids every script of this origin, and the viewer runs a PDF's own
// scripts in its isolated process, not in the page.
const cspFor = (file: FileToSend) =>
  file.disposition === 'inline' && file.mimeType === 'application/pdf' ? CSP : `${CSP}; sandbox`;

/**
 * Sends a stored file with everything a browser or download manager needs: conditional requests (If-None-Match,
 * If-Range), one byte range per request (a multi-range request gets the whole file, as RFC 9110 allows), and a
 * response that is never cut short silently: when the store fails midway the connection is reset, so a client
 * that was promised Content-Length bytes sees the failure. X-Content-Type-Options: nosniff comes from app.ts,
 * which sets it on every response. The client must read at `rate` at least (http/rate.ts), or its connection is
 * closed: a reader trickling a byte at a time would otherwise hold its open file, or its connection to S3 (of which
 * there are S3_MAX_SOCKETS for every download), for as long as it liked. Returns the bytes of the body handed to the
 * connection (0 for 304 and HEAD).
 */
export async function sendFile(
  req: Request,
  res: Response,
  file: FileToSend,
  open: (range: ByteRange | undefined, signal: AbortSignal) => Promise<StoredObject>,
  rate: MinimumRate = MINIMUM_RATE,
): Promise<number> {
  // Only on the file itself and its 304, never on an error instead of it (file missing, store down, range not
  // satisfiable): a browser that kept such an error under the file's ETag would turn it into a 304 later, and show
  // the error after the file is back.
  const validators = {
    ETag: file.etag,
    'Accept-Ranges': 'bytes',
    'Content-Security-Policy': cspFor(file),
  };
  // If-Match first (RFC 9110 13.2.2): a client that asks for the version it holds gets 412, never another version.
  if (!ifMatch(req.get('if-match'), file.etag)) {
    throw new AppError('PRECONDITION_FAILED', 412, 'The document is not the version If-Match names (its ETag differs)');
  }
  if (noneMatch(req.get('if-none-match'), file.etag)) {
    res.status(304).set(validators).end();
    return 0;
  }
  const ifRange = req.get('if-range');
  const range = ifRange === undefined || ifRange === file.etag ? parseRange(req.get('range')) : undefined;

  // Aborts when the client closes the connection before its answer is complete: a file still being opened (its
  // request waiting for an S3 connection) is then not opened at all.
  // A client that left while the document was looked up (the database busy too) has closed already.
  const gone = new AbortController();
  const leave = () => {
    if (!res.writableFinished) gone.abort(new AppError('REQUEST_ABORTED', 400, 'The client closed the connection before the file was sent'));
  };
  if (res.closed) leave();
  else res.once('close', leave);
  let obj: StoredObject;
  try {
    obj = await open(range, gone.signal);
  } finally {
    // Only the opening waits: once the file is open, the pipeline below follows the response itself (and a
    // listener more would take the response past Node's warning of ten).
    res.off('close', leave);
  }
  const length = obj.range ? obj.range.end - obj.range.start + 1 : obj.size;
  try {
    // setHeader, not set(): Express would add "; charset=utf-8" to a text type, and a text file may be in any
    // encoding (a CSV exported as Windows-1252, UTF-16 with its byte-order mark); without one, browsers detect it.
    res.setHeader('Content-Type', file.mimeType);
    res.status(obj.range ? 206 : 200).set(validators).set({
      'Content-Length': String(length),
      'Content-Disposition': contentDisposition(file.disposition, file.fileName),
    });
    if (obj.range) res.set('Content-Range', `bytes ${obj.range.start}-${obj.range.end}/${obj.size}`);
  } catch (err) {
    // Whatever fails before streaming starts must still release the open file or S3 connection.
    obj.body.destroy();
    throw err;
  }
  if (req.method === 'HEAD') {
    obj.body.destroy();
    res.end();
    return 0;
  }
  let sent = 0;
  // Counted as handed to the connection (each chunk the file emits is written to it: a listener, not one more
  // stream stage on every download's path), which takes more only as the client reads (backpressure). Its kernel
  // buffers, a few MB, are read before the pace shows; a client can pause a download (and resume it with a Range)
  // for as long as the bytes before have earned. Only a response backed up is the client's doing: one waiting for
  // its store (S3 slow, which S3_TIMEOUT bounds) is watched again later.
  const stopWatching = watchRate(rate, () => sent, (sentBytes, ms) => {
    if (!res.writableNeedDrain) return false;
    req.log?.warn({ sentBytes, ms }, 'download read too slowly; closing its connection');
    res.destroy();
  });
  try {
    const piped = pipeline(obj.body, res);
    obj.body.on('data', (chunk: Buffer) => {
      // After the pipeline's own listener has written the chunk to the response.
      sent += chunk.length;
      if (sent === length) sentWhole.add(res);
    });
    await piped;
  } catch (err) {
    // A client that closes the moment it has every byte can do so before the response reports 'finish': not a
    // failure. Anything else, with the headers gone, can only be signalled by resetting the connection.
    if (sent === length && (err as { code?: string }).code === 'ERR_STREAM_PREMATURE_CLOSE') return sent;
    res.destroy(err as Error);
    if ((err as { code?: string }).code !== 'ERR_STREAM_PREMATURE_CLOSE') req.log?.warn({ err }, 'file response failed midway');
  } finally {
    stopWatching();
  }
  return sent;
}

/** If-Match uses strong comparison (RFC 9110 13.1.1): a weak W/"x" matches nothing. Absent, it holds. */
function ifMatch(header: string | undefined, etag: string): boolean {
  if (header === undefined || header.trim() === '*') return true;
  return header.split(',').some((tag) => tag.trim() === etag);
}

/**
 * One `bytes=` range, or undefined when there is none or it cannot be honoured as one (several ranges, another
 * unit, bad syntax, a last byte before the first): RFC 9110 lets a server ignore such a header and send the whole
 * file. Positions past 2^53 are held at 2^53 - 1, beyond any file: a first byte there is past the end (416), a last
 * byte there is the file's last, a suffix that long is the whole file.
 */
export function parseRange(header: string | undefined): ByteRange | undefined {
  const match = /^bytes=(\d*)-(\d*)$/.exec(header?.trim() ?? '');
  if (!match) return undefined;
  const [, first, last] = match;
  if (first === '') return last === '' ? undefined : { suffix: position(last) };
  if (last !== '' && BigInt(last) < BigInt(first)) return undefined;
  return last === '' ? { start: position(first) } : { start: position(first), end: position(last) };
}

const position = (digits: string) => Math.min(Number(digits), Number.MAX_SAFE_INTEGER);
