export { createHttpReceiver, TRACES_PATH } from './http-receiver.js';
export { createK8sAuditReceiver, K8S_AUDIT_PATH, DEFAULT_K8S_AUDIT_MAX_REQUEST_BYTES } from './k8s-audit-receiver.js';
export type { K8sAuditReceiverConfig } from './k8s-audit-receiver.js';
export { createGrpcReceiver, TRACE_SERVICE_NAME, TRACE_EXPORT_PATH } from './grpc-receiver.js';
export { createCollectingIngest, COLLECTING_INGEST_RETRY_MS } from './testing.js';
export type { CollectingIngest, CollectedSpan } from './testing.js';
export {
  DEFAULT_MAX_REQUEST_BYTES,
  DEFAULT_HEADERS_TIMEOUT_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_KEEP_ALIVE_TIMEOUT_MS,
  DEFAULT_SHUTDOWN_GRACE_MS,
  DEFAULT_GRPC_FLOW_CONTROL_WINDOW_BYTES,
  ReceiverConfigError,
  validateReceiverConfig,
} from './config.js';
export type { ReceiverConfig, HttpReceiverConfig, GrpcReceiverConfig, ReceiverTlsConfig } from './config.js';
export type { Receiver, ReceiverDeps } from './model.js';
export {
  METRIC_REQUESTS,
  METRIC_REQUESTS_REJECTED,
  METRIC_SPANS_RECEIVED,
  METRIC_SPANS_REJECTED,
  METRIC_REQUEST_BYTES,
} from './metrics.js';
export type { RejectReason, ReceiverProtocol } from './metrics.js';
