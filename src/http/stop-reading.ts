import type { Request, Response } from 'express';

/** How long a refused body is still read, and thrown away, after its answer went out. nginx's lingering_time is 30 s. */
export const LINGER_MS = 10_000;

/**
 * How much of a refused body is read after its answer: as much again as the largest upload, so that a file somewhat
 * past MAX_UPLOAD_SIZE still gets its 413 read, plus room for the form around it.
 */
export function lingerBytesFor(maxUploadBytes: number): number {
  return 2 * maxUploadBytes + 1024 * 1024;
}

/** Whether the request announces a body (chunked, or a Content-Length above 0). */
export function hasBody(req: Request): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

const stopped = new WeakSet<Request>();
const lingering = new WeakSet<Request>();

/**
 * Stops reading a request whose body is refused before it was read. Left alone, Node would read the rest to throw it
 * away, however long: a client sending gigabytes, with no token or past the size limit, would keep the server
 * reading them. Paused, the kernel's buffers fill and the client stops sending while the answer is made. Safe to call
 * again, and called again where a library may have taken to reading the body after it (multer drains a body it
 * refuses, to answer at its end).
 *
 * The answer goes out with Connection: close. Then the rest is read and thrown away after all, up to `lingerBytes` and
 * LINGER_MS (linger): closing a connection with a body still arriving makes the kernel reset it, and a client still
 * sending (fetch, a browser) then fails with a network error instead of reading the 401 or 413 already sent to it.
 */
export function stopReading(req: Request, res: Response, lingerBytes: number): void {
  // A request without a body has none to stop, though `complete` is still false while its own 'request' event
  // runs: an error answered synchronously (an unknown route) must not cost the client its connection.
  if (!hasBody(req) || req.complete || lingering.has(req)) return;
  req.unpipe();
  // One by one: removeAllListeners('data') leaves Node's mark that the stream has 'data' listeners, and Node then
  // sets it flowing again as soon as its 'readable' listeners go, reading the rest into nothing.
  for (const listener of req.listeners('data')) req.removeListener('data', listener as (chunk: unknown) => void);
  req.removeAllListeners('readable');
  req.pause();
  // Throws away what is buffered, which also marks the body as taken: otherwise Node, once the answer is out, reads
  // the rest itself and throws it away unseen (_dump), past linger's count, until its timer.
  req.read();
  if (!res.headersSent) res.set('Connection', 'close');
  if (stopped.has(req)) return;
  stopped.add(req);
  res.once('finish', () => linger(req, lingerBytes));
}

/**
 * The staged close of RFC 9112, 9.6: Node has sent the answer and half-closed the connection (Connection: close), and
 * would close it whole as soon as that is done. It is kept open to read, and the rest thrown away, until the body
 * ends, `lingerBytes` more have come, or LINGER_MS have passed.
 */
function linger(req: Request, lingerBytes: number): void {
  if (req.complete || req.destroyed) return;
  lingering.add(req);
  const socket = req.socket;
  // Node's own close once the half-close is done (net.Socket#destroySoon): now only once the body has stopped.
  socket.removeListener('finish', socket.destroy);
  const close = () => socket.destroy();
  const timer = setTimeout(close, LINGER_MS);
  socket.once('close', () => clearTimeout(timer));
  let left = lingerBytes;
  req.on('data', (chunk: Buffer) => {
    left -= chunk.length;
    if (left < 0) close();
  });
  req.once('end', close);
  req.resume();
}
