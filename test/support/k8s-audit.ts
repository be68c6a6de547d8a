/**
 * A seeded generator of realistic Kubernetes audit events (`audit.k8s.io/v1` Event, as the API
 * server's webhook and log backends write them): controllers, an operator, kubelets, a CI
 * deployer and a monitoring agent doing their usual work, and the monitoring agent's token stolen
 * to list secrets across namespaces and exec into a pod.
 */
import { seeded } from './traffic.js';

export interface AuditEvent {
  kind: 'Event';
  apiVersion: 'audit.k8s.io/v1';
  level: 'Metadata';
  auditID: string;
  stage: 'RequestReceived' | 'ResponseComplete';
  requestURI: string;
  verb: string;
  user: { username: string; uid?: string; groups: string[] };
  sourceIPs: string[];
  userAgent: string;
  objectRef?: { resource: string; namespace?: string; name?: string; apiGroup?: string; apiVersion: string; subresource?: string };
  responseStatus?: { metadata: Record<string, never>; code: number; reason?: string };
  requestReceivedTimestamp: string;
  stageTimestamp: string;
  annotations?: Record<string, string>;
}

const K8S = 'v1.31.2';
export const CONTROLLER = 'system:serviceaccount:kube-system:replicaset-controller';
export const DEPLOYMENT_CONTROLLER = 'system:serviceaccount:kube-system:deployment-controller';
export const OPERATOR = 'system:serviceaccount:cert-manager:cert-manager';
export const DEPLOYER = 'system:serviceaccount:ci:deployer';
export const MONITOR = 'system:serviceaccount:monitoring:metrics-agent';
export const kubelet = (n: number) => `system:node:node-${n}`;
export const APP_NAMESPACES = ['shop', 'payments', 'search'];
/** Namespaces the stolen token lists secrets in. */
export const LOOTED_NAMESPACES = ['kube-system', 'payments', 'ci', 'cert-manager', 'shop', 'monitoring'];

/** One request: the actor and what it does. */
interface Request {
  user: string;
  groups: string[];
  ip: string;
  agent: string;
  verb: string;
  resource: string;
  group?: string;
  namespace?: string;
  name?: string;
  subresource?: string;
  code?: number;
}

function uri(r: Request): string {
  const base = r.group ? `/apis/${r.group}/v1` : '/api/v1';
  const ns = r.namespace ? `/namespaces/${r.namespace}` : '';
  const name = r.name ? `/${r.name}` : '';
  const sub = r.subresource ? `/${r.subresource}` : '';
  return `${base}${ns}/${r.resource}${name}${sub}${r.verb === 'watch' ? '?watch=true' : ''}`;
}

/** Builds the events of a scenario in time order; ids come from the seed. */
export class AuditLog {
  readonly events: AuditEvent[] = [];
  private readonly rnd: () => number;
  constructor(seed: number) {
    this.rnd = seeded(seed);
  }

  private id(): string {
    const hex = () => Math.floor(this.rnd() * 0x10000).toString(16).padStart(4, '0');
    return `${hex()}${hex()}-${hex()}-4${hex().slice(1)}-8${hex().slice(1)}-${hex()}${hex()}${hex()}`;
  }

  /** One request at `atMs`: its ResponseComplete event, and sometimes its RequestReceived event too. */
  add(atMs: number, r: Request): AuditEvent {
    const auditID = this.id();
    const received = new Date(atMs).toISOString().replace('Z', '000Z');
    const done = new Date(atMs + 2 + Math.floor(this.rnd() * 40)).toISOString().replace('Z', '000Z');
    const base = {
      kind: 'Event' as const,
      apiVersion: 'audit.k8s.io/v1' as const,
      level: 'Metadata' as const,
      auditID,
      requestURI: uri(r),
      verb: r.verb,
      user: { username: r.user, groups: r.groups },
      sourceIPs: [r.ip],
      userAgent: r.agent,
      objectRef: {
        resource: r.resource,
        ...(r.namespace ? { namespace: r.namespace } : {}),
        ...(r.name ? { name: r.name } : {}),
        ...(r.group ? { apiGroup: r.group } : {}),
        apiVersion: 'v1',
        ...(r.subresource ? { subresource: r.subresource } : {}),
      },
      requestReceivedTimestamp: received,
    };
    if (this.rnd() < 0.2) this.events.push({ ...base, stage: 'RequestReceived', stageTimestamp: received });
    const code = r.code ?? (r.verb === 'create' ? 201 : 200);
    const event: AuditEvent = {
      ...base,
      stage: 'ResponseComplete',
      responseStatus: { metadata: {}, code, ...(code >= 400 ? { reason: code === 403 ? 'Forbidden' : 'NotFound' } : {}) },
      stageTimestamp: done,
      annotations: { 'authorization.k8s.io/decision': code === 403 ? 'forbid' : 'allow' },
    };
    this.events.push(event);
    return event;
  }

  /** The events in time order (as the API server writes them), ties in the order they were made. */
  sorted(): AuditEvent[] {
    return this.events.map((e, i) => ({ e, i })).sort((a, b) => a.e.requestReceivedTimestamp.localeCompare(b.e.requestReceivedTimestamp) || a.i - b.i).map((x) => x.e);
  }

  /** One minute of a healthy cluster from `atMs`: each actor at a jittered second of the minute. */
  normalMinute(atMs: number, minute: number): void {
    const at = (s: number) => atMs + s * 1000 + Math.floor(this.rnd() * 900);
    const ns = APP_NAMESPACES[minute % APP_NAMESPACES.length]!;
    const sa = ['system:serviceaccounts', 'system:serviceaccounts:kube-system', 'system:authenticated'];
    const cm = (user: string) => ({ user, groups: sa, ip: '10.0.0.10', agent: `kube-controller-manager/${K8S} (linux/amd64) kubernetes/5864a46/system:serviceaccount:kube-system:${user.split(':').pop()}` });
    // Controllers: watch and list what they own; the replica set controller makes pods now and then.
    this.add(at(2), { ...cm(CONTROLLER), verb: 'list', resource: 'pods', namespace: ns });
    this.add(at(3), { ...cm(CONTROLLER), verb: 'list', resource: 'replicasets', group: 'apps', namespace: ns });
    if (minute % 7 === 0) {
      this.add(at(4), { ...cm(CONTROLLER), verb: 'create', resource: 'pods', namespace: ns });
      this.add(at(5), { ...cm(CONTROLLER), verb: 'update', resource: 'replicasets', group: 'apps', namespace: ns, name: `${ns}-api-${7000 + minute}`, subresource: 'status' });
    }
    this.add(at(6), { ...cm(DEPLOYMENT_CONTROLLER), verb: 'list', resource: 'deployments', group: 'apps', namespace: ns });
    this.add(at(7), { ...cm(DEPLOYMENT_CONTROLLER), verb: 'update', resource: 'deployments', group: 'apps', namespace: ns, name: `${ns}-api`, subresource: 'status' });
    // Kubelets: their pods, their status, the secrets and config maps mounted into them.
    for (const n of [1, 2, 3]) {
      const node = { user: kubelet(n), groups: ['system:nodes', 'system:authenticated'], ip: `10.0.1.${10 + n}`, agent: `kubelet/${K8S} (linux/amd64) kubernetes/5864a46` };
      this.add(at(10 + n), { ...node, verb: 'get', resource: 'nodes', name: `node-${n}` });
      this.add(at(12 + n), { ...node, verb: 'patch', resource: 'nodes', name: `node-${n}`, subresource: 'status' });
      this.add(at(14 + n), { ...node, verb: 'get', resource: 'pods', namespace: ns, name: `${ns}-api-${n}` });
      if (minute % 5 === n) this.add(at(16 + n), { ...node, verb: 'get', resource: 'secrets', namespace: ns, name: `${ns}-db-credentials` });
    }
    // An operator: its certificates, and the secrets of its own namespace.
    const op = { user: OPERATOR, groups: sa, ip: '10.0.3.21', agent: 'cert-manager-controller/v1.15.3 (linux/amd64) cert-manager/1d9c4f3' };
    this.add(at(20), { ...op, verb: 'list', resource: 'certificates', group: 'cert-manager.io', namespace: ns });
    if (minute % 3 === 0) this.add(at(21), { ...op, verb: 'get', resource: 'secrets', namespace: 'cert-manager', name: 'letsencrypt-account-key' });
    // The monitoring agent: pods and nodes everywhere, node metrics.
    const mon = { user: MONITOR, groups: sa, ip: '10.0.2.5', agent: 'metrics-agent/2.3.1 (linux/amd64)' };
    this.add(at(30), { ...mon, verb: 'list', resource: 'pods' });
    this.add(at(31), { ...mon, verb: 'list', resource: 'nodes' });
    this.add(at(32), { ...mon, verb: 'get', resource: 'nodes', name: `node-${1 + (minute % 3)}`, subresource: 'proxy' });
    // The CI deployer: a rollout every ten minutes from a runner pod.
    if (minute % 10 === 4) {
      const ci = { user: DEPLOYER, groups: sa, ip: `10.4.2.${17 + (minute % 5)}`, agent: `kubectl/v1.31.0 (linux/amd64) kubernetes/9edcffc` };
      const app = APP_NAMESPACES[(minute / 10) % APP_NAMESPACES.length | 0]!;
      this.add(at(40), { ...ci, verb: 'get', resource: 'deployments', group: 'apps', namespace: app, name: `${app}-api` });
      this.add(at(41), { ...ci, verb: 'patch', resource: 'deployments', group: 'apps', namespace: app, name: `${app}-api` });
      this.add(at(43), { ...ci, verb: 'list', resource: 'replicasets', group: 'apps', namespace: app });
      this.add(at(45), { ...ci, verb: 'list', resource: 'pods', namespace: app });
    }
  }

  /** The monitoring agent's token used from a workstation: secrets listed across namespaces, then a shell in a payments pod. */
  stolenToken(atMs: number): AuditEvent[] {
    const thief = { user: MONITOR, groups: ['system:serviceaccounts', 'system:authenticated'], ip: '10.0.9.77', agent: 'kubectl/v1.30.1 (darwin/arm64) kubernetes/9edcffc' };
    const out: AuditEvent[] = [];
    out.push(this.add(atMs, { ...thief, verb: 'list', resource: 'pods' }));
    LOOTED_NAMESPACES.forEach((ns, k) => out.push(this.add(atMs + 2_000 + k * 700, { ...thief, verb: 'list', resource: 'secrets', namespace: ns })));
    out.push(this.add(atMs + 8_000, { ...thief, verb: 'get', resource: 'pods', namespace: 'payments', name: 'payments-api-1' }));
    out.push(this.add(atMs + 9_000, { ...thief, verb: 'create', resource: 'pods', namespace: 'payments', name: 'payments-api-1', subresource: 'exec', code: 101 }));
    return out;
  }
}

/** The events as the API server's webhook backend posts them: EventList batches of at most `size`. */
export function eventLists(events: readonly AuditEvent[], size = 100): string[] {
  const lists: string[] = [];
  for (let i = 0; i < events.length; i += size) {
    lists.push(JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', metadata: {}, items: events.slice(i, i + size) }));
  }
  return lists;
}
