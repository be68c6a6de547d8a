import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Checks `Authorization: Bearer <token>` values against the configured token in constant time:
 * both sides are hashed first, so neither the content nor the length of the token leaks through
 * timing. The token itself is never logged or echoed.
 */
export function createBearerCheck(token: string): (authorization: string | undefined) => boolean {
  const expected = createHash('sha256').update(token, 'utf8').digest();
  return (authorization) => {
    if (authorization === undefined) return false;
    const match = /^\s*bearer\s+(\S+)\s*$/i.exec(authorization);
    const presented = createHash('sha256').update(match?.[1] ?? '', 'utf8').digest();
    // Compare even when the scheme is wrong, so the answer takes the same time either way.
    return timingSafeEqual(expected, presented) && match !== null;
  };
}

/** The message senders get when the token is missing or wrong. */
export const UNAUTHENTICATED_MESSAGE = 'missing or invalid bearer token: send "Authorization: Bearer <token>"';
