export { createLogger, resolveLogFormat, DEFAULT_LOG_LEVEL, DEFAULT_LOG_FORMAT, LOG_LEVELS, LOG_FORMATS } from './logger.js';
export type { LogLevel, LogFormat, LoggerOptions } from './logger.js';
export { formatConsoleLine } from './console-format.js';
export { routeGrpcLogs } from './grpc.js';
export { createHidingStream } from './hide.js';
export type { HiddenText } from './hide.js';
export { routeProcessWarnings } from './process-warnings.js';
