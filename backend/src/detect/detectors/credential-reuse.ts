import type { Call } from '@conduct/processor';
import { count, has, humanSoftware, isNonHumanIdentity, userAgentFamily, type RecentSource } from '../../learn/index.js';
import { displayName, q, unique, type DetectionContext, type Finding } from '../finding.js';
import { T_VALID_CLOUD_ACCOUNTS } from '../techniques.js';

/** Two sources this close in event time cannot both be the identity's own. */
export const CREDENTIAL_REUSE_WINDOW_MS = 15 * 60_000;
/** Private-address observations needed before a public address is suspicious. */
export const MIN_PRIVATE_OBSERVATIONS = 3;
/** Recent (network, client) pairs remembered per identity. */
export const MAX_RECENT_SOURCES = 16;

/**
 * `credential-reuse`: one identity acts from sources that cannot all be its own. Fires while
 * learning too (a stolen credential is often used minutes after it is issued). Three signs, each
 * high: a machine identity driven by human software (a browser, a cloud CLI on a desktop OS);
 * an identity seen only from private addresses calling from a public one; two different network
 * segments with different client software within CREDENTIAL_REUSE_WINDOW_MS.
 */
export function credentialReuse(ctx: DetectionContext): Finding | undefined {
  const b = ctx.baseline;
  const nonHuman = isNonHumanIdentity(ctx.chain.identity, ctx.chain.identityKind);
  const sentences: string[] = [];
  const keys: string[] = [];
  const offending: Call[] = [];
  const evidence: Record<string, unknown> = {};
  // Earlier calls of this chain count as recent sources too; the service records them afterwards.
  const recent = [...b.recentSources];

  for (const call of ctx.calls) {
    const ua = call.source?.userAgent;
    if (nonHuman && ua) {
      const why = humanSoftware(ua);
      const key = `human:${userAgentFamily(ua)}`;
      if (why && !keys.includes(key) && !ctx.suppressed('credential-reuse', key)) {
        keys.push(key);
        offending.push(call);
        sentences.push(
          `${displayName(ctx)} is a machine identity (${ctx.chain.identityKind}), yet this call was made with ${why}: user agent ${q(ua)}${call.source.clientAddress ? ` from ${q(call.source.clientAddress)}` : ''}. That is a person at a workstation using the identity's credentials.`,
        );
        evidence.humanUserAgent = ua;
      }
    }
    const net = call.source?.network;
    if (call.source?.clientAddress && call.source.publicAddress) {
      const privateSeen = count(b, 'addressClass', 'private');
      const key = `public:${net ?? call.source.clientAddress}`;
      if (privateSeen >= MIN_PRIVATE_OBSERVATIONS && !has(b, 'addressClass', 'public') && !keys.includes(key) && !ctx.suppressed('credential-reuse', key)) {
        keys.push(key);
        offending.push(call);
        sentences.push(
          `Until now ${displayName(ctx)} was only seen from private addresses (${privateSeen} calls, networks ${[...b.entries.network.keys()].slice(0, 4).map(q).join(', ') || 'unknown'}); this call came from the public address ${q(call.source.clientAddress)}.`,
        );
        evidence.publicAddress = call.source.clientAddress;
      }
    }
    if (net && ua) {
      const family = userAgentFamily(ua);
      const learnedHere = has(b, 'network', net) && has(b, 'userAgent', family);
      const other = recent.find(
        (r) => r.network !== net && r.family !== family && Math.abs(r.ms - call.startMs) <= CREDENTIAL_REUSE_WINDOW_MS,
      );
      const key = `reuse:${[net, other?.network ?? ''].sort().join('|')}`;
      if (other && !learnedHere && !keys.includes(key) && !ctx.suppressed('credential-reuse', key)) {
        keys.push(key);
        offending.push(call);
        const minutes = Math.max(1, Math.round(Math.abs(call.startMs - other.ms) / 60_000));
        sentences.push(
          `Within ${minutes} minute${minutes === 1 ? '' : 's'} ${displayName(ctx)} acted from network ${q(other.network)} with ${q(other.family)} (trace ${other.traceId}) and from network ${q(net)} with ${q(family)} in this chain: two places and two clients at once.`,
        );
        evidence.otherSource = other;
      }
      recent.push({ network: net, family, ms: call.startMs, traceId: call.traceId, spanId: call.spanId });
    }
  }
  if (keys.length === 0) return undefined;
  offending.sort((a, c) => a.startMs - c.startMs);
  return {
    detector: 'credential-reuse',
    keys,
    severity: 'high',
    reach: true,
    external: false,
    sensitive: offending.some((c) => ctx.sensitive(c)),
    title: `${displayName(ctx)}'s credentials appear to be used by someone else`,
    explanation: sentences.join(' '),
    spanIds: unique(offending.map((c) => c.spanId)),
    eventMs: offending[0]!.startMs,
    techniques: [T_VALID_CLOUD_ACCOUNTS],
    evidence,
  };
}

/** The sources of a chain's calls, to remember once the chain is analysed. */
export function chainSources(calls: readonly Call[]): RecentSource[] {
  const out: RecentSource[] = [];
  for (const c of calls) {
    if (c.source?.network && c.source.userAgent) {
      out.push({ network: c.source.network, family: userAgentFamily(c.source.userAgent), ms: c.startMs, traceId: c.traceId, spanId: c.spanId });
    }
  }
  return out;
}

/** Adds a source to the bounded recent list (one entry per network and family, newest kept). */
export function rememberSource(recent: RecentSource[], s: RecentSource): void {
  const i = recent.findIndex((r) => r.network === s.network && r.family === s.family);
  if (i >= 0) {
    if (recent[i]!.ms >= s.ms) return;
    recent.splice(i, 1);
  }
  recent.push(s);
  recent.sort((a, b) => a.ms - b.ms);
  if (recent.length > MAX_RECENT_SOURCES) recent.splice(0, recent.length - MAX_RECENT_SOURCES);
}
