import type { Call } from '@conduct/processor';
import { bound, parseEdgeService, sourceKey, topEntries, userAgentFamily, SOURCE_KINDS, type Baseline, type EntryKind } from '../../learn/index.js';
import { displayName, listWithCounts, q, unique, type DetectionContext, type Finding } from '../finding.js';
import { T_VALID_CLOUD_ACCOUNTS } from '../techniques.js';

const NOUN: Partial<Record<EntryKind, string>> = {
  region: 'region',
  account: 'account',
  cluster: 'cluster',
  network: 'network segment',
  userAgent: 'client software',
};

/**
 * Where a workload is placed inside its own account and region: the cluster, and the network
 * segment of its pod addresses. Nodes come and go (a node-pool rotation, an autoscaler), and a
 * failover runs the same workload in a standby cluster.
 */
const PLACEMENT: ReadonlySet<EntryKind> = new Set<EntryKind>(['cluster', 'network']);

/**
 * `new-source`: an enforcing identity acts from a region, own account, cluster, network segment or
 * client software family outside its baseline (only for kinds its baseline has seen; host and pod
 * names are never compared). Medium; high from a public address or with a sensitive operation.
 * Placement inside known ground is not news: a new private segment of a call from a known cluster
 * is a new node of that cluster (no finding), and a new cluster or segment alone, private, in a
 * known region and account, is low (a rescheduled or failed-over workload). Both only for calls made
 * by a service the identity is known to act through: its credential used by another workload (a
 * certificate or token taken to another pod or cluster) is a new source wherever that runs.
 */
export function newSource(ctx: DetectionContext): Finding | undefined {
  if (ctx.learning.status !== 'enforcing') return undefined;
  const b = ctx.baseline;
  let found: Map<string, { kind: EntryKind; value: string; calls: Call[] }> | undefined;
  // Made when a new network is asked about: most chains have no new source.
  let ownService: ((service: string) => boolean) | undefined;
  const entries = b.entries;
  for (const call of ctx.calls) {
    // Most calls come from known ground: each source value looked up in its kind's map by name
    // first (`b.entries[kind]` kind by kind is a megamorphic load), the general loop only for a call
    // with a value its baseline does not hold.
    const s = call.source;
    if (
      !s ||
      (known(entries.region, s.region) &&
        known(entries.account, s.account) &&
        known(entries.cluster, s.cluster) &&
        known(entries.network, s.network) &&
        (!s.userAgent || known(entries.userAgent, userAgentFamily(s.userAgent))))
    ) {
      continue;
    }
    for (const kind of SOURCE_KINDS) {
      const known = b.entries[kind];
      // The address class is not compared; a value only for kinds the baseline has seen.
      if (kind === 'addressClass' || known.size === 0) continue;
      const value = sourceKey(call, kind);
      if (!value || known.has(value)) continue;
      if (kind === 'network' && newNode(call, b.entries.cluster) && (ownService ??= knownServices(b))(call.service)) continue;
      const key = `${kind}:${value}`;
      if (ctx.suppressed('new-source', key)) continue;
      found ??= new Map();
      const f = found.get(key) ?? { kind, value, calls: [] };
      f.calls.push(call);
      found.set(key, f);
    }
  }
  if (!found) return undefined;
  ownService ??= knownServices(b);
  const offending = unique([...found.values()].flatMap((f) => f.calls)).sort((a, c) => a.startMs - c.startMs);
  const sentences: string[] = [];
  for (const kind of unique([...found.values()].map((f) => f.kind))) {
    const usual = topEntries(b, kind, 5);
    const fresh = [...found.values()].filter((f) => f.kind === kind).map((f) => f.value);
    sentences.push(
      `Normally ${displayName(ctx)} acts from ${NOUN[kind]} ${listWithCounts(usual)}; this chain came from ${fresh.map(q).join(', ')}.`,
    );
  }
  const publicCall = offending.find((c) => c.source?.publicAddress);
  if (publicCall) sentences.push(`The client address ${q(publicCall.source.clientAddress ?? '')} is public.`);
  const sensitive = offending.filter((c) => ctx.sensitive(c));
  if (sensitive.length) sentences.push(`From there it performed ${unique(sensitive.map((c) => c.operation)).slice(0, 3).map(q).join(', ')}, which is sensitive.`);
  const labels = [...found.values()].map((f) => `${NOUN[f.kind]} ${f.value}`);
  // A segment is placement only for calls that name their cluster (their own pods' addresses); for
  // a client seen only by its address, the segment is where the credential is used from.
  const placement =
    !publicCall &&
    !sensitive.length &&
    [...found.values()].every((f) => PLACEMENT.has(f.kind) && f.calls.every((c) => sourceKey(c, 'cluster') !== undefined)) &&
    offending.every((c) => knownGround(c, b.entries));
  const strangers = placement ? unique(offending.filter((c) => !ownService(c.service)).map((c) => c.service)) : [];
  if (strangers.length > 0) {
    sentences.push(
      `Region and account are the usual ones, but the calls came from ${strangers.slice(0, 3).map(q).join(', ')}, a service it never acted through: its credential used by another workload, not the same workload moved.`,
    );
  } else if (placement) sentences.push('Region and account are the usual ones: a workload rescheduled or failed over inside its own ground, so this stays low.');
  const lowered = placement && strangers.length === 0;
  return {
    detector: 'new-source',
    keys: [...found.keys()],
    severity: publicCall || sensitive.length ? 'high' : lowered ? 'low' : 'medium',
    reach: true,
    external: false,
    sensitive: sensitive.length > 0,
    title: `${displayName(ctx)} acted from a new ${labels.slice(0, 2).join(' and ')}`,
    explanation: sentences.join(' '),
    spanIds: unique(offending.map((c) => c.spanId)),
    eventMs: offending[0]!.startMs,
    techniques: [T_VALID_CLOUD_ACCOUNTS],
    evidence: { newSources: [...found.values()].map((f) => ({ kind: f.kind, value: f.value })) },
  };
}

/** What the general loop concludes for one kind's value: nothing to report (no value, a kind never seen, or a known value). */
const known = (map: ReadonlyMap<string, unknown>, value: string | undefined): boolean => !value || map.size === 0 || map.has(value);

/**
 * Whether the identity is known to act through a service (the caller service of a learned call
 * graph edge); the edges are read once per chain, and only when a chain has a new source.
 */
function knownServices(b: Baseline): (service: string) => boolean {
  let services: Set<string> | undefined;
  return (service) => {
    if (!services) {
      services = new Set();
      for (const key of b.entries.edge.keys()) {
        const s = parseEdgeService(key);
        if (s !== undefined) services.add(s);
      }
    }
    return services.has(bound(service));
  };
}

/** A private address of a call made from a cluster the identity is known in: a pod on a new node. */
function newNode(call: Call, clusters: ReadonlyMap<string, unknown>): boolean {
  const cluster = sourceKey(call, 'cluster');
  return cluster !== undefined && clusters.has(cluster) && call.source?.publicAddress !== true;
}

/** The call's region and own account, where it names them, are known to the identity. */
function knownGround(call: Call, entries: DetectionContext['baseline']['entries']): boolean {
  const region = sourceKey(call, 'region');
  const account = sourceKey(call, 'account');
  return (region === undefined || entries.region.has(region)) && (account === undefined || entries.account.has(account));
}
