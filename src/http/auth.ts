import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import jwt from 'jsonwebtoken';
import type { Config } from '../config';
import { UnauthorizedError } from '../errors';

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * Seconds by which the issuer's clock and this one may differ, for nbf and exp: a token the CRM signs with nbf now,
 * on a server whose clock runs a second ahead, would otherwise be refused as not yet valid. 30 s, as is usual.
 */
const CLOCK_TOLERANCE_S = 30;

/**
 * Requires `Authorization: Bearer <token>`, the token one of API_TOKENS or a JWT signed HS256 with JWT_SECRET
 * (exp and nbf honoured; aud and iss required to match JWT_AUDIENCE and JWT_ISSUER when set). With neither
 * configured the API is open (startup warned, or refused in production).
 */
export function bearerAuth(auth: Config['auth']): RequestHandler {
  if (auth.open) return (_req, _res, next) => next();
  // Compared as fixed-length digests, every token every time, so timing says nothing about any of them.
  const tokens = auth.tokens.map(digest);
  const isApiToken = (token: string) => {
    const candidate = digest(token);
    return tokens.reduce((found, t) => timingSafeEqual(t, candidate) || found, false);
  };

  return (req, _res, next) => {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(req.get('authorization') ?? '');
    if (!match) {
      return next(new UnauthorizedError('AUTH_REQUIRED', 'Send a bearer token: Authorization: Bearer <token>'));
    }
    const token = match[1];
    if (isApiToken(token)) return next();
    if (auth.jwtSecret) {
      const verify = (ignoreTimes: boolean) =>
        jwt.verify(token, auth.jwtSecret!, {
          algorithms: ['HS256'],
          audience: auth.jwtAudience,
          issuer: auth.jwtIssuer,
          ignoreExpiration: ignoreTimes,
          ignoreNotBefore: ignoreTimes,
          clockTolerance: CLOCK_TOLERANCE_S,
        });
      try {
        verify(false);
        return next();
      } catch (err) {
        // jsonwebtoken checks the times before aud and iss. An expired token signed for another purpose is invalid,
        // not expired: a frontend told "expired" would refresh it, and get a token still not meant for this service.
        const timed = err instanceof jwt.TokenExpiredError || err instanceof jwt.NotBeforeError;
        if (timed && isValid(() => verify(true))) {
          return next(
            err instanceof jwt.TokenExpiredError
              ? new UnauthorizedError('TOKEN_EXPIRED', 'The token has expired')
              : new UnauthorizedError('TOKEN_NOT_YET_VALID', 'The token is not valid yet'),
          );
        }
      }
    }
    next(new UnauthorizedError('INVALID_TOKEN', 'The bearer token is not valid'));
  };
}

function isValid(verify: () => unknown): boolean {
  try {
    verify();
    return true;
  } catch {
    return false;
  }
}
