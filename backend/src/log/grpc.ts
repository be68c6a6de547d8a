import { format } from 'node:util';
import { setLogger } from '@grpc/grpc-js';
import type { Logger as PinoLogger } from 'pino';

/**
 * Sends @grpc/grpc-js's own messages (it writes `E No address added ...` to the console by
 * default) through conduct's logger, so standard error holds nothing but log lines. The library
 * keeps one logger per process: the command's entry point calls this once.
 */
export function routeGrpcLogs(logger: Pick<PinoLogger, 'error' | 'info' | 'debug'>): void {
  const fields = { source: 'grpc-js' };
  setLogger({
    error: (...args: unknown[]) => logger.error(fields, format(...args)),
    info: (...args: unknown[]) => logger.info(fields, format(...args)),
    debug: (...args: unknown[]) => logger.debug(fields, format(...args)),
  });
}
