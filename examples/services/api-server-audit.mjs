// The demo's Kubernetes API server, as far as conduct sees it: the audit events of the cluster's
// own identities (a controller, kubelets, a monitoring agent), posted in EventList batches to
// conduct's audit webhook receiver (`receivers.k8sAudit`) the way the API server's batch webhook
// backend posts them. No cluster runs; the events are what one would write.

const K8S = 'v1.31.2';
export const MONITORING_AGENT = 'system:serviceaccount:monitoring:metrics-agent';
export const CONTROLLER = 'system:serviceaccount:kube-system:replicaset-controller';
const NAMESPACES = ['shop', 'payments', 'search'];
/** Namespaces whose secrets the stolen token lists. */
export const LOOTED_NAMESPACES = ['kube-system', 'payments', 'ci', 'shop', 'monitoring'];
const SERVICE_ACCOUNT_GROUPS = ['system:serviceaccounts', 'system:authenticated'];

let sequence = 0;
/** A unique, recognisable audit id (the API server uses random UUIDs). */
function auditId() {
  sequence++;
  return `00000000-0000-4000-8000-${String(sequence).padStart(12, '0')}`;
}

function event(atMs, r) {
  const ts = new Date(atMs).toISOString();
  const done = new Date(atMs + 3).toISOString();
  const base = r.group ? `/apis/${r.group}/v1` : '/api/v1';
  return {
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'Metadata',
    auditID: auditId(),
    stage: 'ResponseComplete',
    requestURI: `${base}${r.namespace ? `/namespaces/${r.namespace}` : ''}/${r.resource}${r.name ? `/${r.name}` : ''}${r.subresource ? `/${r.subresource}` : ''}`,
    verb: r.verb,
    user: { username: r.user, groups: r.groups ?? SERVICE_ACCOUNT_GROUPS },
    sourceIPs: [r.ip],
    userAgent: r.agent,
    objectRef: { resource: r.resource, ...(r.namespace ? { namespace: r.namespace } : {}), ...(r.name ? { name: r.name } : {}), ...(r.group ? { apiGroup: r.group } : {}), apiVersion: 'v1', ...(r.subresource ? { subresource: r.subresource } : {}) },
    responseStatus: { metadata: {}, code: r.code ?? 200 },
    requestReceivedTimestamp: ts,
    stageTimestamp: done,
  };
}

/** Creates the audit source; `endpoint` is conduct's receivers.k8sAudit HOST:PORT. */
export function createApiServerAudit({ endpoint }) {
  const url = `http://${endpoint}/k8s-audit`;
  let offsetMs = 0;
  let queued = [];
  const now = () => Date.now() + offsetMs;
  const add = (atMs, r) => queued.push(event(atMs, r));
  return {
    /** The demo clock: ms added to the current time for event timestamps. */
    setClock(ms) {
      offsetMs = ms;
    },
    /** One minute of the cluster's ordinary work. */
    normalMinute(minute) {
      const t = now();
      const ns = NAMESPACES[minute % NAMESPACES.length];
      const cm = { user: CONTROLLER, ip: '10.0.0.10', agent: `kube-controller-manager/${K8S} (linux/amd64) kubernetes/5864a46/system:serviceaccount:kube-system:replicaset-controller` };
      add(t + 100, { ...cm, verb: 'list', resource: 'pods', namespace: ns });
      add(t + 200, { ...cm, verb: 'list', resource: 'replicasets', group: 'apps', namespace: ns });
      for (const n of [1, 2]) {
        const node = { user: `system:node:node-${n}`, groups: ['system:nodes', 'system:authenticated'], ip: `10.0.1.${10 + n}`, agent: `kubelet/${K8S} (linux/amd64) kubernetes/5864a46` };
        add(t + 300 + n, { ...node, verb: 'get', resource: 'nodes', name: `node-${n}` });
        add(t + 400 + n, { ...node, verb: 'patch', resource: 'nodes', name: `node-${n}`, subresource: 'status' });
        add(t + 500 + n, { ...node, verb: 'get', resource: 'pods', namespace: ns, name: `${ns}-api-${n}` });
      }
      const mon = { user: MONITORING_AGENT, ip: '10.0.2.5', agent: 'metrics-agent/2.3.1 (linux/amd64)' };
      add(t + 600, { ...mon, verb: 'list', resource: 'pods' });
      add(t + 700, { ...mon, verb: 'list', resource: 'nodes' });
      add(t + 800, { ...mon, verb: 'get', resource: 'nodes', name: `node-${1 + (minute % 2)}`, subresource: 'proxy' });
    },
    /** The monitoring agent's token, copied off its pod, used from a laptop: secrets everywhere, then a shell in payments. */
    stolenToken() {
      const t = now();
      const thief = { user: MONITORING_AGENT, ip: '10.0.9.77', agent: 'kubectl/v1.30.1 (darwin/arm64) kubernetes/9edcffc' };
      add(t, { ...thief, verb: 'list', resource: 'pods' });
      LOOTED_NAMESPACES.forEach((ns, k) => add(t + 1_000 + k * 500, { ...thief, verb: 'list', resource: 'secrets', namespace: ns }));
      add(t + 5_000, { ...thief, verb: 'create', resource: 'pods', namespace: 'payments', name: 'payments-api-1', subresource: 'exec', code: 101 });
    },
    /** Posts what is queued as one EventList, as the batch backend does; throws unless conduct took it. */
    async flush() {
      if (queued.length === 0) return;
      const items = queued;
      queued = [];
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', metadata: {}, items }) });
      if (res.status !== 200) throw new Error(`audit webhook answered ${res.status}: ${await res.text()}`);
    },
  };
}
