import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from '../logger';

const CONNECT = 'CONNECT_NOT_SERVED';

/** What Node's HTTP parser rejects (and CONNECT, which Node hands over as a socket), as the API's own errors. */
const ANSWERS: Record<string, [status: number, code: string, message: string, headers?: string]> = {
  HPE_HEADER_OVERFLOW: [431, 'HEADERS_TOO_LARGE', 'The request headers (or its URL) are too large'],
  HPE_CHUNK_EXTENSIONS_OVERFLOW: [413, 'BODY_TOO_LARGE', 'The chunk extensions of the request body are too large'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'REQUEST_TIMEOUT', 'The request headers took too long to arrive'],
  // The client closed its side (a half-close) before the request it announced was complete, in its headers or its
  // body: what it sent is discarded. A route already handling the body does not see the half-close (it would wait
  // for the rest until the body's minimum rate cut it off), so the answer comes from here, at once.
  HPE_INVALID_EOF_STATE: [400, 'REQUEST_INCOMPLETE', 'The request ended before it was complete'],
  [CONNECT]: [405, 'METHOD_NOT_ALLOWED', 'CONNECT is not served: this is not a proxy', 'Allow: GET, HEAD, POST, DELETE\r\n'],
};

type ClientSocket = Duplex & { _httpMessage?: { headersSent?: boolean } };

/**
 * The server's 'clientError' handler. Node answers a request it cannot parse (headers over 16 kB, an unknown
 * method, broken framing) before Express sees it, with a status line and an empty body; the frontend then has no
 * `{"error": {"code", "message"}}` to show. Same statuses as Node's, with the API's JSON, and the connection closed.
 *
 * A browser shows the frontend a CORS answer only. The request's Origin is not known here (its headers are what
 * failed), so the answer allows the one origin CORS_ORIGINS names, or any when it says `*`: a CRM whose JWT has
 * grown past 16 kB then sees 431 HEADERS_TOO_LARGE, not a network error. With several origins, none can be chosen.
 *
 * Each answer has a request id (X-Request-Id) and a log line with it, as every request Express answers has: a
 * frontend reporting "431" can be matched with what the service saw. Logged at info, as any request is: a client's
 * mistake, or a scanner's, is not the service's fault.
 */
export function clientErrorHandler(
  corsOrigins: readonly string[],
  logger?: Logger,
): (err: Error & { code?: string }, socket: ClientSocket) => void {
  const allow = corsOrigins.includes('*') ? '*' : corsOrigins.length === 1 ? corsOrigins[0] : undefined;
  // X-Request-Id exposed, as app.ts's CORS does: without it fetch() cannot read the id the answer carries.
  const cors =
    allow === undefined
      ? ''
      : `Access-Control-Allow-Origin: ${allow}\r\nAccess-Control-Expose-Headers: X-Request-Id\r\n${allow === '*' ? '' : 'Vary: Origin\r\n'}`;
  return (err, socket) => answerClientError(err, socket, cors, logger);
}

/**
 * The server's 'connect' handler. Node closes a CONNECT request's connection without a word when nothing listens
 * for it; it gets the API's JSON instead, as every other method this service does not serve gets an answer.
 */
export function connectHandler(corsOrigins: readonly string[], logger?: Logger): (req: unknown, socket: ClientSocket) => void {
  const refuse = clientErrorHandler(corsOrigins, logger);
  return (_req, socket) => refuse(Object.assign(new Error('CONNECT'), { code: CONNECT }), socket);
}

function answerClientError(err: Error & { code?: string }, socket: ClientSocket, cors: string, logger?: Logger): void {
  // Nothing to answer on a connection that is gone, or in the middle of a response (Node's own rule: a connection
  // that served earlier requests, kept alive, gets its answer).
  if (err.code === 'ECONNRESET' || !socket.writable || socket._httpMessage?.headersSent) {
    socket.destroy();
    return;
  }
  const [status, code, message, headers = ''] = ANSWERS[err.code ?? ''] ?? [400, 'BAD_REQUEST', 'The request is not valid HTTP'];
  const body = JSON.stringify({ error: { code, message } });
  const requestId = randomUUID();
  // The parser's code says what was wrong (HPE_INVALID_METHOD, HPE_HEADER_OVERFLOW...); not the bytes, which may
  // hold a token.
  logger?.info({ requestId, status, code, parserError: err.code, remoteAddress: (socket as { remoteAddress?: string }).remoteAddress }, 'request refused before routing');
  // Closed once written: the connection allows half-open use, so end() alone would keep it until the idle timeout.
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nX-Content-Type-Options: nosniff\r\nX-Request-Id: ${requestId}\r\n` +
      `${cors}${headers}Connection: close\r\n\r\n${body}`,
    () => socket.destroy(),
  );
}
