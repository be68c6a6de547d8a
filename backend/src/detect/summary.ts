import type { Chain } from '@conduct/processor';
import type { PolicyConfig } from './settings.js';
import {
  edgeKey,
  parsePair,
  parseShapeKey,
  summarise,
  type Baseline,
  type Entry,
  type EntryKind,
  type LearningState,
  type RateSummary,
} from '../learn/index.js';

/** Entries listed per kind in a baseline summary (most frequent first). */
export const BASELINE_SUMMARY_LIMIT = 100;

export interface SummaryItem {
  key: string;
  count: number;
  firstSeen: string;
  lastSeen: string;
}

/** The learned baseline of one identity, as `GET /api/v1/identities/{id}` shows it. */
export interface BaselineSummary {
  status: LearningState['status'];
  progress: number;
  calls: number;
  firstSeen?: string;
  lastSeen?: string;
  compromised: boolean;
  peers: SummaryItem[];
  operations: SummaryItem[];
  transitions: { from: string; to: string; count: number; firstSeen: string; lastSeen: string }[];
  shapes: { operations: string[]; count: number; lastSeen: string }[];
  sources: {
    regions: SummaryItem[];
    accounts: SummaryItem[];
    clusters: SummaryItem[];
    networks: SummaryItem[];
    userAgents: SummaryItem[];
    addressClasses: SummaryItem[];
  };
  targets: SummaryItem[];
  accounts: SummaryItem[];
  rate: {
    windowMs: number;
    calls: RateSummary;
    distinctTargets: RateSummary;
    distinctAccounts: RateSummary;
    distinctPeers: RateSummary;
  };
  policy: PolicyConfig | null;
  /** New entries refused because a per-identity cap was reached. */
  dropped: number;
}

const iso = (ms: number) => new Date(ms).toISOString();

function items(b: Baseline, kind: EntryKind, limit = BASELINE_SUMMARY_LIMIT): SummaryItem[] {
  return sorted(b.entries[kind])
    .slice(0, limit)
    .map(([key, e]) => ({ key, count: e.count, firstSeen: iso(e.firstMs), lastSeen: iso(e.lastMs) }));
}

function sorted(map: Map<string, Entry>): [string, Entry][] {
  return [...map].sort((x, y) => y[1].count - x[1].count || (x[0] < y[0] ? -1 : 1));
}

export function baselineSummary(
  b: Baseline,
  state: LearningState,
  policy: PolicyConfig | undefined,
  windowMs: number,
): BaselineSummary {
  return {
    status: state.status,
    progress: state.progress,
    calls: b.calls,
    ...(b.calls > 0 ? { firstSeen: iso(b.firstMs), lastSeen: iso(b.lastMs) } : {}),
    compromised: b.compromised,
    peers: items(b, 'peer'),
    operations: items(b, 'operation'),
    transitions: sorted(b.entries.transition)
      .slice(0, BASELINE_SUMMARY_LIMIT)
      .flatMap(([key, e]) => {
        const pair = parsePair(key);
        return pair ? [{ from: pair[0], to: pair[1], count: e.count, firstSeen: iso(e.firstMs), lastSeen: iso(e.lastMs) }] : [];
      }),
    shapes: sorted(b.entries.shape)
      .slice(0, BASELINE_SUMMARY_LIMIT)
      .map(([key, e]) => ({ operations: parseShapeKey(key), count: e.count, lastSeen: iso(e.lastMs) })),
    sources: {
      regions: items(b, 'region'),
      accounts: items(b, 'account'),
      clusters: items(b, 'cluster'),
      networks: items(b, 'network'),
      userAgents: items(b, 'userAgent'),
      addressClasses: items(b, 'addressClass'),
    },
    targets: items(b, 'target'),
    accounts: items(b, 'targetAccount'),
    rate: {
      windowMs,
      calls: summarise(b.rate.samples.calls),
      distinctTargets: summarise(b.rate.samples.targets),
      distinctAccounts: summarise(b.rate.samples.accounts),
      distinctPeers: summarise(b.rate.samples.peers),
    },
    policy: policy ?? null,
    dropped: b.dropped,
  };
}

export interface GraphNode {
  id: string;
  kind: 'identity' | 'service' | 'peer';
  label: string;
  peerKind?: string;
  external?: boolean;
  /** Only seen in alerted (held-out) chains, not in the learned baseline. */
  alertOnly?: boolean;
}

export interface GraphEdge {
  from: string;
  to: string;
  operation: string;
  count: number;
  firstSeen: string;
  lastSeen: string;
  alertOnly?: boolean;
}

export interface IdentityGraph {
  nodes: GraphNode[];
  edges: GraphEdge[];
}

/** Operation label of the edges from the identity to the services it acts through. */
export const ACTS_THROUGH = '(acts through)';

/**
 * The learned call graph of an identity: the identity, the services it acts through and the peers
 * they call, with per-edge counts and first/last seen. Edges and nodes seen only in held-out
 * (alerted, not yet expected) chains are added with `alertOnly: true`.
 */
export function identityGraph(b: Baseline, heldChains: readonly Chain[]): IdentityGraph {
  const nodes = new Map<string, GraphNode>();
  const edges = new Map<string, GraphEdge>();
  nodes.set(b.identity, { id: b.identity, kind: 'identity', label: b.displayName ?? b.identity });
  const addNode = (n: GraphNode) => {
    const cur = nodes.get(n.id);
    if (!cur) nodes.set(n.id, n);
    else if (cur.alertOnly && !n.alertOnly) delete cur.alertOnly;
  };
  const addEdge = (from: string, to: string, operation: string, count: number, firstMs: number, lastMs: number, alertOnly: boolean) => {
    const key = JSON.stringify([from, to, operation]);
    const cur = edges.get(key);
    if (cur) {
      cur.count += count;
      if (iso(firstMs) < cur.firstSeen) cur.firstSeen = iso(firstMs);
      if (iso(lastMs) > cur.lastSeen) cur.lastSeen = iso(lastMs);
      if (!alertOnly) delete cur.alertOnly;
      return;
    }
    edges.set(key, {
      from,
      to,
      operation,
      count,
      firstSeen: iso(firstMs),
      lastSeen: iso(lastMs),
      ...(alertOnly ? { alertOnly: true } : {}),
    });
  };
  for (const [key, e] of b.entries.edge) {
    const parts = parseEdgeKey(key);
    if (!parts) continue;
    const [service, peer, operation, peerKind, external] = parts;
    addNode({ id: service, kind: 'service', label: service });
    addNode({ id: peer, kind: 'peer', label: peer, peerKind, external });
    addEdge(b.identity, service, ACTS_THROUGH, e.count, e.firstMs, e.lastMs, false);
    addEdge(service, peer, operation, e.count, e.firstMs, e.lastMs, false);
  }
  for (const chain of heldChains) {
    for (const call of chain.calls) {
      if (b.entries.edge.has(edgeKey(call))) continue;
      addNode({ id: call.service, kind: 'service', label: call.service, alertOnly: true });
      addNode({ id: call.peer, kind: 'peer', label: call.peer, peerKind: call.peerKind, external: call.external, alertOnly: true });
      const knownService = [...edges.values()].some((x) => x.from === b.identity && x.to === call.service && !x.alertOnly);
      if (!knownService) addEdge(b.identity, call.service, ACTS_THROUGH, 1, call.startMs, call.startMs, true);
      addEdge(call.service, call.peer, call.operation, 1, call.startMs, call.startMs, true);
    }
  }
  return { nodes: [...nodes.values()], edges: [...edges.values()] };
}


function parseEdgeKey(key: string): [string, string, string, string, boolean] | undefined {
  try {
    const v: unknown = JSON.parse(key);
    if (!Array.isArray(v) || v.length < 5) return undefined;
    return [String(v[0]), String(v[1]), String(v[2]), String(v[3]), v[4] === true];
  } catch {
    return undefined;
  }
}
