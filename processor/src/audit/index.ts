export type { AuditCall, AuditRead } from './model.js';
export { readCloudTrailRecord, cloudTrailRecordsOf, cloudTrailPrincipal, clientAddressOf, CLOUDTRAIL_SYSTEM, AWS_SERVICE_PREFIX, AWS_ACCOUNT_PREFIX } from './cloudtrail.js';
export { readK8sAuditEvent, k8sEventsOf, K8S_AUDIT_SYSTEM, K8S_API_SERVER, K8S_AUDIT_API_VERSION, RESPONSE_COMPLETE } from './k8s-audit.js';
export { auditRequest, auditSpan, auditTraceId, auditSpanId, AUDIT_CHAIN_WINDOW_MS } from './spans.js';
