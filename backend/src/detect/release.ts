import type { Call } from '@conduct/processor';
import { SEVERITY_RANK } from '../alerts/model.js';
import { parsePair, versionKey, type Baseline } from '../learn/index.js';
import { displayName, q, unique, type DetectionContext, type Finding } from './finding.js';

/**
 * Change awareness: a release is the identity's workload rolling out a new `service.version`
 * with new internal operations, internal peers or a new order of known operations on the calls of
 * that version. Those findings (`new-operation`, `new-peer`, `unusual-chain`) become one low
 * `release` finding that lists what changed; the chain is learned as usual, so the release's
 * behaviour is in the baseline from then on. Within the grace period after the version was first
 * seen, further new internal behaviour on it joins the same release (same key: counted on its
 * incident). A release that brings anything an attacker's build would need (an external peer, a
 * sensitive operation, another account, a new source, a policy breach, or any other finding of
 * medium or above) is not a release: its findings stand as they are, with a sentence that it came
 * with a new version.
 */

export { DEFAULT_RELEASE_GRACE_MS } from './limits.js';

/** Detectors whose findings a release may explain. */
const RELEASE_DETECTORS = new Set(['new-operation', 'new-peer', 'unusual-chain']);

/** A caller service's version that is being rolled out at the time of a call. */
interface Rollout {
  service: string;
  version: string;
  /** Event time the version was first seen (this chain's first call of it when it is new). */
  firstMs: number;
  /** The service's versions learned before it, with their calls. */
  previous: { version: string; count: number }[];
}

/**
 * The chain's findings with those a release explains replaced by one `release` finding; the
 * findings as they were when the chain is no release (a sentence added when a new version came
 * with findings it cannot explain).
 */
export function applyRelease(ctx: DetectionContext, findings: Finding[], graceMs: number): Finding[] {
  if (findings.length === 0 || graceMs <= 0) return findings;
  const rollouts = rolloutsOf(ctx, graceMs);
  if (rollouts.size === 0) return findings;
  const onRollout = new Map<string, Rollout>();
  for (const call of ctx.calls) {
    const r = call.version ? rollouts.get(versionKey(call.service, call.version)) : undefined;
    if (r) onRollout.set(call.spanId, r);
  }
  const explained = findings.filter((f) => explains(f, onRollout));
  const blocking = findings.filter((f) => !explained.includes(f) && SEVERITY_RANK[f.severity] >= SEVERITY_RANK.medium);
  if (blocking.length > 0) {
    return findings.map((f) => {
      const r = f.spanIds.map((id) => onRollout.get(id)).find((x) => x !== undefined);
      return r ? notARelease(f, r, blocking) : f;
    });
  }
  if (explained.length === 0) return findings;
  const rollout = onRollout.get(explained[0]!.spanIds.find((id) => onRollout.has(id))!)!;
  const finding = releaseFinding(ctx, rollout, explained, graceMs);
  const rest = findings.filter((f) => !explained.includes(f));
  return ctx.suppressed('release', finding.keys[0]!) ? rest : [finding, ...rest];
}

/** A finding the rollout explains: internal, not sensitive, every offending call on the new version. */
function explains(f: Finding, onRollout: ReadonlyMap<string, Rollout>): boolean {
  if (!RELEASE_DETECTORS.has(f.detector) || f.external || f.sensitive) return false;
  if (f.keys.some((k) => k.startsWith('account:'))) return false;
  return f.spanIds.length > 0 && f.spanIds.every((id) => onRollout.has(id));
}

/** The versions of the chain's calls that are being rolled out (keyed by their `version` entry key). */
function rolloutsOf(ctx: DetectionContext, graceMs: number): Map<string, Rollout> {
  const b = ctx.baseline;
  const out = new Map<string, Rollout>();
  const seen = new Set<string>();
  for (const call of ctx.calls) {
    if (!call.version) continue;
    const key = versionKey(call.service, call.version);
    if (seen.has(key)) continue;
    seen.add(key);
    const firstMs = b.entries.version.get(key)?.firstMs ?? firstCallOf(ctx.calls, call).startMs;
    if (call.startMs - firstMs > graceMs) continue;
    const previous = earlierVersions(b, call.service, firstMs);
    if (previous.length === 0) continue;
    out.set(key, { service: call.service, version: call.version, firstMs, previous });
  }
  return out;
}

function firstCallOf(calls: readonly Call[], like: Call): Call {
  return calls.find((c) => c.service === like.service && c.version === like.version) ?? like;
}

/** The service's learned versions first seen before `beforeMs`, most used first. */
function earlierVersions(b: Baseline, service: string, beforeMs: number): { version: string; count: number }[] {
  const out: { version: string; count: number }[] = [];
  for (const [key, e] of b.entries.version) {
    const pair = parsePair(key);
    if (pair && pair[0] === service && e.firstMs < beforeMs) out.push({ version: pair[1], count: e.count });
  }
  return out.sort((x, y) => y.count - x.count);
}

function releaseFinding(ctx: DetectionContext, r: Rollout, explained: readonly Finding[], graceMs: number): Finding {
  const of = (detector: string) => explained.find((f) => f.detector === detector)?.evidence;
  const operations = (of('new-operation')?.newOperations as string[] | undefined) ?? [];
  const peers = (of('new-peer')?.newPeers as string[] | undefined) ?? [];
  const steps = ((of('unusual-chain')?.transitions as { from: string; to: string }[] | undefined) ?? []).map((t) => ({ from: t.from, to: t.to }));
  const changes = [
    operations.length ? `${operations.length} new operation${operations.length === 1 ? '' : 's'}` : '',
    peers.length ? `${peers.length} new internal peer${peers.length === 1 ? '' : 's'}` : '',
    steps.length ? `${steps.length} new step${steps.length === 1 ? '' : 's'} between known operations` : '',
  ].filter(Boolean);
  const sentences = [
    `${displayName(ctx)}'s workload ${q(r.service)} runs a new version, ${q(r.version)}, first seen ${new Date(r.firstMs).toISOString()}; before it ran ${r.previous.slice(0, 3).map((p) => `${q(p.version)} (${p.count} calls)`).join(', ')}.`,
    `On the new version it ${[
      operations.length ? `performed new operations ${operations.slice(0, 8).map(q).join(', ')}` : '',
      peers.length ? `called new internal peers ${peers.slice(0, 8).map(q).join(', ')}` : '',
      steps.length ? `took new steps ${steps.slice(0, 4).map((s) => `${q(s.from)} -> ${q(s.to)}`).join(', ')}` : '',
    ]
      .filter(Boolean)
      .join('; ')}.`,
    `New internal behaviour within ${Math.round(graceMs / 60_000)} minutes of a new version is taken as its release and learned; a release that also brings an external peer, a sensitive operation, another account, a new source or a denied operation is judged as an attack.`,
  ];
  const spanIds = unique(explained.flatMap((f) => f.spanIds));
  return {
    detector: 'release',
    keys: [`release:${JSON.stringify([r.service, r.version])}`],
    severity: 'low',
    reach: false,
    external: false,
    sensitive: false,
    title: `${displayName(ctx)} rolled out ${r.service} ${r.version}: ${changes.join(', ')}`,
    explanation: sentences.join(' '),
    spanIds,
    eventMs: Math.min(...explained.map((f) => f.eventMs)),
    // A release is no attack technique.
    techniques: [],
    evidence: {
      service: r.service,
      version: r.version,
      firstSeen: new Date(r.firstMs).toISOString(),
      previousVersions: r.previous.slice(0, 8),
      graceMs,
      newOperations: operations,
      newPeers: peers,
      newSteps: steps,
      explained: explained.map((f) => ({ detector: f.detector, keys: f.keys })),
    },
  };
}

/** What makes a finding more than a release could bring. */
function whyNot(f: Finding): string {
  if (f.external) return 'an external peer';
  if (f.sensitive) return 'a sensitive operation';
  if (f.keys.some((k) => k.startsWith('account:'))) return 'another account';
  if (f.detector === 'new-source') return 'a new source';
  if (f.detector === 'policy') return 'a breach of its policy';
  return `a ${f.severity} ${f.detector} finding`;
}

/** A finding on a new version's calls in a chain a release cannot explain, saying why. */
function notARelease(f: Finding, r: Rollout, blocking: readonly Finding[]): Finding {
  const why = unique(blocking.map(whyNot));
  return {
    ...f,
    explanation: `${f.explanation} It came with a new version of ${q(r.service)}, ${q(r.version)}, and is judged as it stands: the chain brought ${why.join(', ')}, which no release explains.`,
    evidence: { ...f.evidence, newVersion: { service: r.service, version: r.version, firstSeen: new Date(r.firstMs).toISOString() } },
  };
}
