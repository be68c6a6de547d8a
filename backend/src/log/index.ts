export { createLogger, DEFAULT_LOG_LEVEL } from './logger.js';
export type { LogLevel, LoggerOptions } from './logger.js';
