import type { Call } from '@conduct/processor';
import { sourceKey, topEntries, SOURCE_KINDS, type EntryKind } from '../../learn/index.js';
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
 * `new-source`: an enforcing identity acts from a region, own account, cluster, network segment or
 * client software family outside its baseline (only for kinds its baseline has seen; host and pod
 * names are never compared). Medium; high from a public address or with a sensitive operation.
 */
export function newSource(ctx: DetectionContext): Finding | undefined {
  if (ctx.learning.status !== 'enforcing') return undefined;
  const b = ctx.baseline;
  let found: Map<string, { kind: EntryKind; value: string; calls: Call[] }> | undefined;
  for (const call of ctx.calls) {
    for (const kind of SOURCE_KINDS) {
      const known = b.entries[kind];
      // The address class is not compared; a value only for kinds the baseline has seen.
      if (kind === 'addressClass' || known.size === 0) continue;
      const value = sourceKey(call, kind);
      if (!value || known.has(value)) continue;
      const key = `${kind}:${value}`;
      if (ctx.suppressed('new-source', key)) continue;
      found ??= new Map();
      const f = found.get(key) ?? { kind, value, calls: [] };
      f.calls.push(call);
      found.set(key, f);
    }
  }
  if (!found) return undefined;
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
  return {
    detector: 'new-source',
    keys: [...found.keys()],
    severity: publicCall || sensitive.length ? 'high' : 'medium',
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
