import type { Logger as PinoLogger } from 'pino';

/**
 * Sends Node's process warnings (deprecations, MaxListenersExceeded, ...) through conduct's logger
 * instead of Node's own `(node:123) Warning: ...` lines on standard error. For the command's
 * entry point: it replaces every `warning` listener of the process.
 */
export function routeProcessWarnings(logger: Pick<PinoLogger, 'warn'>): void {
  process.removeAllListeners('warning');
  process.on('warning', (warning: Error & { code?: string }) => {
    logger.warn({ source: 'node', warning: warning.name, ...(warning.code ? { code: warning.code } : {}) }, warning.message);
  });
}
