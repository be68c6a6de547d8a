import pino, { type DestinationStream, type Logger as PinoLogger } from 'pino';

/** Log levels of `log.level`. */
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'silent';

export const DEFAULT_LOG_LEVEL: LogLevel = 'info';

export interface LoggerOptions {
  /** Lowest level written. Default DEFAULT_LOG_LEVEL. */
  level?: LogLevel;
  /** Where JSON lines go; standard error (fd 2) by default, written synchronously. */
  destination?: DestinationStream;
}

/** conduct's logger: pino JSON lines on standard error, so standard output stays free for data. */
export function createLogger(options: LoggerOptions = {}): PinoLogger {
  const destination = options.destination ?? pino.destination({ fd: 2, sync: true });
  return pino({ name: 'conduct', level: options.level ?? DEFAULT_LOG_LEVEL, base: { name: 'conduct' } }, destination);
}
