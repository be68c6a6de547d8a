import { createHash } from 'node:crypto';
import { SpanKind, StatusCode, type Attributes, type ResourceSpansData, type SpanData, type TracesRequestData } from '@conduct/proto';
import * as sc from '../semconv.js';
import type { AuditCall } from './model.js';

/**
 * Audited calls of one principal that start in the same window of event time (windows of this
 * length from the Unix epoch) share a trace id, so they make one chain.
 */
export const AUDIT_CHAIN_WINDOW_MS = 60_000;

function hexHash(text: string, chars: number): string {
  return createHash('sha256').update(text, 'utf8').digest('hex').slice(0, chars);
}

/**
 * The synthetic trace id of a principal's window: the same events give the same id whether they
 * arrive live or from a file, so both make the same chains.
 */
export function auditTraceId(principal: string, startMs: number, windowMs = AUDIT_CHAIN_WINDOW_MS): string {
  return hexHash(`conduct-audit\u0000${principal}\u0000${Math.floor(startMs / windowMs)}`, 32);
}

/** The span id of a record: a record sent twice is one span (a trace keeps the first span of an id). */
export function auditSpanId(call: AuditCall): string {
  return hexHash(`conduct-audit\u0000${call.system}\u0000${call.recordId}`, 16);
}

function attributesOf(call: AuditCall): Attributes {
  const a: Attributes = Object.create(null) as Attributes;
  a[sc.ENDUSER_ID] = call.principal;
  a[sc.RPC_SYSTEM] = call.system;
  if (call.rpcService) a[sc.RPC_SERVICE] = call.rpcService;
  a[sc.RPC_METHOD] = call.method;
  if (call.target) a[call.bucket ? sc.AWS_S3_BUCKET : sc.CLOUD_RESOURCE_ID] = call.target;
  if (call.account) a[sc.CLOUD_ACCOUNT_ID] = call.account;
  if (call.clientAddress) a[sc.CLIENT_ADDRESS] = call.clientAddress;
  if (call.userAgent) a[sc.USER_AGENT_ORIGINAL] = call.userAgent;
  if (call.httpStatus !== undefined) a[sc.HTTP_RESPONSE_STATUS_CODE] = call.httpStatus;
  if (call.errorCode) a[sc.ERROR_TYPE] = call.errorCode;
  a[sc.CONDUCT_AUDIT_RECORD_ID] = call.recordId;
  if (call.region) a[sc.CONDUCT_AUDIT_REGION] = call.region;
  if (call.callerAccount) a[sc.CONDUCT_AUDIT_CALLER_ACCOUNT] = call.callerAccount;
  return a;
}

/**
 * One audited call as the span the callee would have written: a root server span of the service
 * that served it, with the principal as `enduser.id`, so identity rules, stitching, calls and
 * chains treat it as any server-side-only call.
 */
export function auditSpan(call: AuditCall, windowMs = AUDIT_CHAIN_WINDOW_MS): SpanData {
  return {
    traceId: auditTraceId(call.principal, call.startMs, windowMs),
    spanId: auditSpanId(call),
    parentSpanId: '',
    name: call.rpcService ? `${call.rpcService}/${call.method}` : call.method,
    kind: SpanKind.SERVER,
    startMs: call.startMs,
    endMs: call.endMs,
    statusCode: call.errorCode ? StatusCode.ERROR : StatusCode.UNSET,
    attributes: attributesOf(call),
  };
}

/** Audited calls as one decoded trace request, one resource per serving service. */
export function auditRequest(calls: readonly AuditCall[], windowMs = AUDIT_CHAIN_WINDOW_MS): TracesRequestData {
  const byService = new Map<string, ResourceSpansData>();
  for (const call of calls) {
    let rs = byService.get(call.service);
    if (!rs) {
      const resource: Attributes = Object.create(null) as Attributes;
      resource[sc.SERVICE_NAME] = call.service;
      byService.set(call.service, (rs = { resource, spans: [] }));
    }
    rs.spans.push(auditSpan(call, windowMs));
  }
  return { resourceSpans: [...byService.values()], spanCount: calls.length, rejectedSpans: 0, rejectMessage: '' };
}
