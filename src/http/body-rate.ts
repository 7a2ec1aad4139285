import type { Request, RequestHandler } from 'express';
import { AppError } from '../errors';
import { sendError } from './errors';
import { MINIMUM_RATE, type MinimumRate, watchRate } from './rate';
import { hasBody } from './stop-reading';

/**
 * A request body must keep coming (http/rate.ts): it gets `graceMs`, and one more second for every `bytesPerSecond`
 * bytes it has sent. Without it a client sending one byte a minute held its connection, its upload's temporary
 * file and its memory forever, and enough such clients took every file descriptor. A client that falls behind gets
 * 408 REQUEST_TIMEOUT and its connection closed; its upload is discarded like any cut off. A body the server itself
 * stops reading (waiting for room, S3 stalling) does not fall behind in the meantime: what it sent before has earned
 * it time.
 */
export function minimumBodyRate(rate: MinimumRate = MINIMUM_RATE): RequestHandler {
  return (req, res, next) => {
    if (!hasBody(req)) return next();
    const socket = req.socket;
    // Counted on the socket, not with a 'data' listener, which would set the body flowing before its reader is there.
    const before = socket.bytesRead;
    const stop = watchRate(
      rate,
      () => socket.bytesRead - before,
      (received, ms) => {
        if (!req.complete && !res.writableFinished && !socket.destroyed) tooSlow(req, received, ms);
      },
    );
    res.once('close', stop);
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
