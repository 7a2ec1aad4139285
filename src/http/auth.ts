import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import jwt from 'jsonwebtoken';
import type { Config } from '../config';
import { UnauthorizedError } from '../errors';

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * Requires `Authorization: Bearer <token>`, the token one of API_TOKENS or a JWT signed HS256 with JWT_SECRET
 * (exp and nbf honoured; aud and iss required to match JWT_AUDIENCE and JWT_ISSUER when set). With neither configured the API is open (startup warned, or refused in production).
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
      try {
        jwt.verify(token, auth.jwtSecret, { algorithms: ['HS256'], audience: auth.jwtAudience, issuer: auth.jwtIssuer });
        return next();
      } catch (err) {
        if (err instanceof jwt.TokenExpiredError) return next(new UnauthorizedError('TOKEN_EXPIRED', 'The token has expired'));
        if (err instanceof jwt.NotBeforeError) return next(new UnauthorizedError('TOKEN_NOT_YET_VALID', 'The token is not valid yet'));
      }
    }
    next(new UnauthorizedError('INVALID_TOKEN', 'The bearer token is not valid'));
  };
}
