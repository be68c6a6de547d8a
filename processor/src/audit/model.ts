/**
 * One audited API call as conduct reads it from an audit log (CloudTrail, Kubernetes audit),
 * before it becomes a span: the same facts a server span at the callee gives.
 */
export interface AuditCall {
  /** The authenticated principal that made the call. */
  principal: string;
  /** The service that served the call and wrote the record: `s3.amazonaws.com`, `kube-apiserver`. */
  service: string;
  /** `aws-api` or `kubernetes`: the `rpc.system` of the span. */
  system: string;
  /** The operation's service part, when it has one (CloudTrail `eventSource`). */
  rpcService?: string;
  /** The operation: `ListBuckets`, `list pods`, `create pods/exec`. */
  method: string;
  /** The resource acted on: bucket, ARN, `namespace/name`. */
  target?: string;
  /** True when `target` is an S3 bucket (kept as `aws.s3.bucket`). */
  bucket?: boolean;
  /** The account the call acted in (CloudTrail `recipientAccountId`). */
  account?: string;
  /** The caller's own account (CloudTrail `userIdentity.accountId`). */
  callerAccount?: string;
  /** The region the call was served in. */
  region?: string;
  clientAddress?: string;
  userAgent?: string;
  /** HTTP status of the answer (Kubernetes `responseStatus.code`). */
  httpStatus?: number;
  /** The error the call ended with (CloudTrail `errorCode`, a Kubernetes failure reason). */
  errorCode?: string;
  /** Event time of the call, ms since the Unix epoch. */
  startMs: number;
  endMs: number;
  /** The record's own id (CloudTrail `eventID`, Kubernetes `auditID`). */
  recordId: string;
}

/** A record read, or why it was not used. `skipped` records are expected (other stages, no principal) and only counted. */
export type AuditRead = { ok: true; call: AuditCall } | { ok: false; skipped: boolean; reason: string };
