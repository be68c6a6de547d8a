import pino, { type DestinationStream, type Logger as PinoLogger } from 'pino';
import { createConsoleStream } from './console-format.js';
import { createHidingStream, type HiddenText } from './hide.js';

/** Log levels of `log.level` and `--log-level`, lowest first. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const DEFAULT_LOG_LEVEL: LogLevel = 'info';

/**
 * Formats of `log.format`: `json` (one JSON object a line, `level` as a name, `time` in ISO 8601),
 * `console` (one readable line per entry), or `auto`: console when standard error is a terminal,
 * JSON otherwise.
 */
export const LOG_FORMATS = ['auto', 'json', 'console'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export const DEFAULT_LOG_FORMAT: LogFormat = 'auto';

export interface LoggerOptions {
  /** Lowest level written. Default DEFAULT_LOG_LEVEL. */
  level?: LogLevel;
  /** Line format. Default DEFAULT_LOG_FORMAT. */
  format?: LogFormat;
  /** Where lines go; standard error (fd 2) by default, written synchronously. */
  destination?: DestinationStream;
  /** Whether the destination is a terminal, for `auto`; standard error's by default. */
  isTTY?: boolean;
  /** Texts no line may show (configuration values from environment variables), each replaced by its `as`. */
  hide?: readonly HiddenText[];
}

/** The format `auto` stands for: console on a terminal, JSON otherwise. */
export function resolveLogFormat(format: LogFormat, isTTY: boolean): 'json' | 'console' {
  if (format === 'auto') return isTTY ? 'console' : 'json';
  return format;
}

/** conduct's logger: pino lines on standard error, so standard output stays free for data. */
export function createLogger(options: LoggerOptions = {}): PinoLogger {
  const destination = options.destination ?? pino.destination({ fd: 2, sync: true });
  const format = resolveLogFormat(options.format ?? DEFAULT_LOG_FORMAT, options.isTTY ?? process.stderr.isTTY === true);
  return pino(
    {
      level: options.level ?? DEFAULT_LOG_LEVEL,
      base: { name: 'conduct' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    createHidingStream(format === 'console' ? createConsoleStream(destination) : destination, options.hide ?? []),
  );
}
