import type { Request, Response } from 'express';

/**
 * Stops reading a request whose body is refused before it was read. Left alone, Node would read the rest to throw it
 * away and keep the connection: a client sending gigabytes, with no token or past the size limit, would keep the
 * server reading them. Paused, the kernel's buffers fill and the client stops sending; the answer goes out with
 * Connection: close, after which Node closes the connection, unread rest and all. Safe to call again, and called again
 * where a library may have taken to reading the body after it (multer drains a body it refuses, to answer at its end).
 */
export function stopReading(req: Request, res: Response): void {
  // A request without a body has none to stop, though `complete` is still false while its own 'request' event
  // runs: an error answered synchronously (an unknown route) must not cost the client its connection.
  const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
  if (!hasBody || req.complete) return;
  req.unpipe();
  // One by one: removeAllListeners('data') leaves Node's mark that the stream has 'data' listeners, and Node then
  // sets it flowing again as soon as its 'readable' listeners go, reading the rest into nothing.
  for (const listener of req.listeners('data')) req.removeListener('data', listener as (chunk: unknown) => void);
  req.removeAllListeners('readable');
  req.pause();
  if (!res.headersSent) res.set('Connection', 'close');
}
