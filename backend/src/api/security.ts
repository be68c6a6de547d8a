import { createHash, timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';

/** Content-Security-Policy of every answer: the UI loads only its own scripts, styles and data. */
export const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/** Headers set on every response, errors included. */
export function securityHeaders(): MiddlewareHandler {
  return async (c, next) => {
    await next();
    c.header('X-Content-Type-Options', 'nosniff');
    c.header('Content-Security-Policy', CONTENT_SECURITY_POLICY);
    c.header('X-Frame-Options', 'DENY');
    c.header('Referrer-Policy', 'no-referrer');
    c.header('Cross-Origin-Opener-Policy', 'same-origin');
  };
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/**
 * Compares a presented bearer token with the configured one in constant time (both hashed first,
 * so neither length nor content leaks through timing).
 */
export function tokenMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header ?? '');
  const presented = m?.[1] ?? '';
  // Always compare, even when the header is missing, so both paths take the same time.
  return timingSafeEqual(digest(presented), digest(token)) && presented.length > 0;
}

/** 401 JSON unless the request carries `Authorization: Bearer <token>`. */
export function requireToken(token: string): MiddlewareHandler {
  return async (c, next) => {
    if (!tokenMatches(c.req.header('authorization'), token)) {
      c.header('WWW-Authenticate', 'Bearer realm="conduct"');
      return c.json({ error: 'missing or wrong bearer token' }, 401);
    }
    await next();
  };
}
