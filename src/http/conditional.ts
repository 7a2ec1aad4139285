import type { Express, Request } from 'express';

/**
 * If-None-Match uses weak comparison (RFC 9110 13.1.2): W/"x" matches "x", whichever side is weak. `*` matches any
 * current representation, with an ETag or without.
 */
export function noneMatch(header: string | undefined, etag: string | undefined): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  if (!etag) return false;
  const opaque = etag.replace(/^W\//, '');
  return header.split(',').some((tag) => tag.trim().replace(/^W\//, '') === opaque);
}

/**
 * Express's `req.fresh`, which decides a JSON GET's 304, with If-None-Match evaluated whatever Cache-Control the
 * request carries. Express's (the `fresh` package) answers every request with `Cache-Control: no-cache` as stale, a
 * rule for caches; and fetch() adds that header to every request whose If-None-Match the frontend sets itself, so
 * the frontend's revalidation never got its 304. An origin server evaluates the precondition (RFC 9110 13.2.1);
 * no-cache asks caches to let it. A request without If-None-Match is Express's to judge (If-Modified-Since).
 */
export function freshByETag(app: Express): void {
  const expressFresh = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(app.request), 'fresh')!.get!;
  Object.defineProperty(app.request, 'fresh', {
    configurable: true,
    enumerable: true,
    get(this: Request): boolean {
      const header = this.get('if-none-match');
      if (!header) return expressFresh.call(this) as boolean;
      if (this.method !== 'GET' && this.method !== 'HEAD') return false;
      const status = this.res!.statusCode;
      if ((status < 200 || status >= 300) && status !== 304) return false;
      return noneMatch(header, this.res!.get('ETag'));
    },
  });
}
