import type { Request, Response } from 'express';

const stopped = new WeakSet<Request>();

/**
 * Stops reading a request whose body is refused before it was read. Left alone, Node would read the rest to throw it
 * away and keep the connection: a client sending gigabytes, with no token or past the size limit, would keep the
 * server reading them. Paused, the kernel's buffers fill and the client stops sending; the answer goes out with
 * Connection: close, after which Node closes the connection, unread rest and all.
 */
export function stopReading(req: Request, res: Response): void {
  // A request without a body has none to stop, though `complete` is still false while its own 'request' event
  // runs: an error answered synchronously (an unknown route) must not cost the client its connection.
  const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
  if (!hasBody || req.complete || stopped.has(req)) return;
  stopped.add(req);
  req.unpipe();
  req.removeAllListeners('data');
  req.removeAllListeners('readable');
  req.pause();
  if (!res.headersSent) res.set('Connection', 'close');
}
