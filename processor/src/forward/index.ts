export {
  type ForwardTargetConfig,
  type ForwardTlsConfig,
  type ForwardRetryConfig,
  type ForwardProtocol,
  type ForwardCompression,
  type ResolvedForwardTarget,
  ForwardConfigError,
  resolveForwardTarget,
  DEFAULT_FORWARD_PROTOCOL,
  DEFAULT_FORWARD_TIMEOUT_MS,
  DEFAULT_FORWARD_QUEUE_SIZE,
  DEFAULT_FORWARD_QUEUE_MAX_BYTES,
  DEFAULT_FORWARD_SPOOL_MAX_BYTES,
  DEFAULT_SPOOL_SEGMENT_BYTES,
  DEFAULT_FORWARD_DRAIN_MS,
  DEFAULT_RETRY_INITIAL_MS,
  DEFAULT_RETRY_MAX_INTERVAL_MS,
  DEFAULT_RETRY_MAX_ELAPSED_MS,
  DEFAULT_RETRY_MAX_RETRY_AFTER_MS,
} from './config.js';
export { createForwarder, DEFAULT_FLUSH_TIMEOUT_MS, type Forwarder, type ForwarderDeps, type SubmitResult } from './forwarder.js';
export type { ForwardRequest } from './downstream.js';
export { backoffMs } from './downstream.js';
export { tracesJsonToProtobuf, JsonConversionError, MAX_JSON_VALUE_DEPTH } from './json-to-protobuf.js';
export { Spool, SPOOL_SYNC_INTERVAL_MS, type SpoolRecord, type SpoolOptions } from './spool.js';
export { retryDelayFromStatusDetails, TRACE_EXPORT_METHOD } from './grpc-transport.js';
export { parseRetryAfter, type SendOutcome, type Transport, type WirePayload } from './transport.js';
export { tracesUrl } from './http-transport.js';
