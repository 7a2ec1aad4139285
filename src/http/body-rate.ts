import type { Request, RequestHandler } from 'express';
import { AppError } from '../errors';
import { sendError } from './errors';
import { hasBody } from './stop-reading';

export interface BodyRate {
  /** How long any body may take, whatever its size. */
  readonly graceMs: number;
  /** Each byte received earns this much more time, on average: 500 B/s is 4 kbit/s, a very poor mobile line. */
  readonly bytesPerSecond: number;
}

/** Apache's mod_reqtimeout default for bodies (body=20,MinRate=500), with more grace for a phone starting an upload. */
export const BODY_RATE: BodyRate = { graceMs: 30_000, bytesPerSecond: 500 };

/**
 * A request body must keep coming: it gets `graceMs`, and one more second for every `bytesPerSecond` bytes it has
 * sent. The server's idle timeout alone is reset by every byte, so a client sending one byte a minute held its
 * connection, its upload's temporary file and its memory forever, and enough such clients took every file
 * descriptor. A client that falls behind gets 408 REQUEST_TIMEOUT and its connection closed; its upload is
 * discarded like any cut off. A body the server itself stops reading (waiting for room, S3 stalling) does not fall
 * behind in the meantime: what it sent before has earned it time.
 */
export function minimumBodyRate(rate: BodyRate = BODY_RATE): RequestHandler {
  return (req, res, next) => {
    if (!hasBody(req)) return next();
    const socket = req.socket;
    // Counted on the socket, not with a 'data' listener, which would set the body flowing before its reader is there.
    const before = socket.bytesRead;
    const started = Date.now();
    let timer: NodeJS.Timeout | undefined;
    const check = () => {
      if (req.complete || res.writableFinished || socket.destroyed) return;
      const deadline = started + rate.graceMs + ((socket.bytesRead - before) / rate.bytesPerSecond) * 1000;
      if (Date.now() < deadline) {
        timer = setTimeout(check, deadline - Date.now()).unref();
        return;
      }
      tooSlow(req, socket.bytesRead - before, Date.now() - started);
    };
    timer = setTimeout(check, rate.graceMs).unref();
    res.once('close', () => clearTimeout(timer));
    next();
  };
}

function tooSlow(req: Request, received: number, ms: number): void {
  const res = req.res!;
  req.log?.warn({ receivedBytes: received, ms }, 'request body arriving too slowly; closing its connection');
  // The request, not only its socket: once its answer is sent, Node no longer ties the request to the socket, and a
  // body left half-read would never end nor fail, nor the upload reading it.
  const close = () => void req.destroy(new Error('The request body arrived too slowly'));
  if (res.headersSent) return close();
  res.once('finish', close);
  res.set('Connection', 'close');
  sendError(res, new AppError('REQUEST_TIMEOUT', 408, 'The request body arrived too slowly; send it again'));
}
