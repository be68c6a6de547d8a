import { templatePath } from '../calls/operation.js';
import type { AuditCall, AuditRead } from './model.js';
import { field, isObject, MAX_AGENT_LENGTH, timeOf } from './text.js';

/** `rpc.system` of calls read from Kubernetes audit events. */
export const K8S_AUDIT_SYSTEM = 'kubernetes';
/** The peer of every Kubernetes audit call: the API server that wrote the event. */
export const K8S_API_SERVER = 'kube-apiserver';
/** The API version of the events read. */
export const K8S_AUDIT_API_VERSION = 'audit.k8s.io/v1';
/** The one stage whose events are calls: the response was sent. */
export const RESPONSE_COMPLETE = 'ResponseComplete';
/** Longest request path read for a non-resource request. */
const MAX_PATH_LENGTH = 512;

/**
 * The operation of an audit event: `<verb> <resource>[/<subresource>]` (`list pods`, `create
 * pods/exec`), or `<verb> <path>` for a non-resource request (`get /healthz`). A request made
 * while impersonating ends in ` as <user>`, as the API server records it: the authenticated user
 * is the caller, the impersonated one is part of what it did.
 */
function operationOf(event: Record<string, unknown>, verb: string): string | undefined {
  const ref = event.objectRef;
  let what: string | undefined;
  if (isObject(ref)) {
    const resource = field(ref.resource);
    const sub = field(ref.subresource);
    if (resource) what = sub ? `${resource}/${sub}` : resource;
  }
  if (!what) {
    const uri = field(event.requestURI, MAX_PATH_LENGTH);
    if (uri) what = templatePath(uri);
  }
  if (!what) return undefined;
  const impersonated = isObject(event.impersonatedUser) ? field(event.impersonatedUser.username) : undefined;
  return impersonated ? `${verb} ${what} as ${impersonated}` : `${verb} ${what}`;
}

/** `namespace/name`, the namespace alone (collections), or the name of a cluster-scoped object. */
function targetOf(ref: unknown): string | undefined {
  if (!isObject(ref)) return undefined;
  const namespace = field(ref.namespace);
  const name = field(ref.name);
  if (namespace && name) return `${namespace}/${name}`;
  return namespace ?? name;
}

/**
 * One `audit.k8s.io/v1` Event as an audited call at the API server. Only events at stage
 * `ResponseComplete` are calls (the others are skipped: the same request appears once per stage);
 * the caller is `user.username` (service accounts `system:serviceaccount:<ns>:<name>`).
 */
export function readK8sAuditEvent(event: unknown): AuditRead {
  if (!isObject(event)) return { ok: false, skipped: false, reason: 'not a JSON object' };
  if (event.stage !== RESPONSE_COMPLETE) return { ok: false, skipped: true, reason: `stage ${String(field(event.stage, 32) ?? 'missing')}` };
  const principal = isObject(event.user) ? field(event.user.username) : undefined;
  if (!principal) return { ok: false, skipped: false, reason: 'no user.username' };
  const verb = field(event.verb, 32);
  if (!verb) return { ok: false, skipped: false, reason: 'no verb' };
  const method = operationOf(event, verb);
  if (!method) return { ok: false, skipped: false, reason: 'no objectRef.resource or requestURI' };
  const recordId = field(event.auditID, 64);
  if (!recordId) return { ok: false, skipped: false, reason: 'no auditID' };
  const startMs = timeOf(event.requestReceivedTimestamp) ?? timeOf(event.stageTimestamp);
  if (startMs === undefined) return { ok: false, skipped: false, reason: 'no requestReceivedTimestamp' };
  const endMs = Math.max(startMs, timeOf(event.stageTimestamp) ?? startMs);
  const call: AuditCall = { principal, service: K8S_API_SERVER, system: K8S_AUDIT_SYSTEM, method, startMs, endMs, recordId };
  const target = targetOf(event.objectRef);
  if (target) call.target = target;
  const ips = event.sourceIPs;
  const address = Array.isArray(ips) ? field(ips[0], 64) : undefined;
  if (address) call.clientAddress = address;
  const agent = field(event.userAgent, MAX_AGENT_LENGTH);
  if (agent) call.userAgent = agent;
  const status = isObject(event.responseStatus) ? event.responseStatus : undefined;
  const code = status?.code;
  if (typeof code === 'number' && Number.isInteger(code) && code >= 100 && code <= 999) {
    call.httpStatus = code;
    if (code >= 400) {
      const reason = field(status!.reason, 64);
      call.errorCode = reason ?? String(code);
    }
  }
  return { ok: true, call };
}

/** The events of an `EventList` body (`kind: EventList`, `items`), or why it is not one. */
export function k8sEventsOf(document: unknown): { ok: true; events: unknown[] } | { ok: false; message: string } {
  if (!isObject(document)) return { ok: false, message: 'the body is not a JSON object' };
  if (document.kind !== 'EventList') return { ok: false, message: 'the body is not an audit.k8s.io EventList (kind must be "EventList")' };
  if (document.apiVersion !== undefined && document.apiVersion !== K8S_AUDIT_API_VERSION) {
    return { ok: false, message: `unsupported apiVersion: send ${K8S_AUDIT_API_VERSION}` };
  }
  if (document.items === undefined || document.items === null) return { ok: true, events: [] };
  if (!Array.isArray(document.items)) return { ok: false, message: 'EventList items is not an array' };
  return { ok: true, events: document.items };
}
