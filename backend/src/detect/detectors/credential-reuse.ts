import type { Call } from '@conduct/processor';
import { bound, count, has, humanSoftware, isNonHumanIdentity, userAgentFamily, type RecentSource } from '../../learn/index.js';
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
  // Made at the first finding: most chains have none (no arrays per chain).
  let f: Found | undefined;
  // Earlier calls of this chain count as recent sources too, after the baseline's (the service
  // records them afterwards); kept apart, as copying the baseline's list per chain cost more than
  // the rest of the detector, and only while a later call may read them.
  let earlier: RecentSource[] | undefined;
  const calls = ctx.calls;

  for (let i = 0; i < calls.length; i++) {
    const call = calls[i]!;
    const ua = call.source?.userAgent;
    if (nonHuman && ua) {
      const why = humanSoftware(ua);
      const key = why ? `human:${userAgentFamily(ua)}` : '';
      if (why && !f?.keys.includes(key) && !ctx.suppressed('credential-reuse', key)) {
        f = add(
          f,
          key,
          call,
          `${displayName(ctx)} is a machine identity (${ctx.chain.identityKind}), yet this call was made with ${why}: user agent ${q(ua)}${call.source.clientAddress ? ` from ${q(call.source.clientAddress)}` : ''}. That is a person at a workstation using the identity's credentials.`,
        );
        f.evidence.humanUserAgent = ua;
      }
    }
    const net = call.source?.network;
    if (call.source?.clientAddress && call.source.publicAddress) {
      const privateSeen = count(b, 'addressClass', 'private');
      const key = `public:${net ?? call.source.clientAddress}`;
      if (privateSeen >= MIN_PRIVATE_OBSERVATIONS && !has(b, 'addressClass', 'public') && !f?.keys.includes(key) && !ctx.suppressed('credential-reuse', key)) {
        f = add(
          f,
          key,
          call,
          `Until now ${displayName(ctx)} was only seen from private addresses (${privateSeen} calls, networks ${[...b.entries.network.keys()].slice(0, 4).map(q).join(', ') || 'unknown'}); this call came from the public address ${q(call.source.clientAddress)}.`,
        );
        f.evidence.publicAddress = call.source.clientAddress;
      }
    }
    if (net && ua) {
      const family = userAgentFamily(ua);
      // Maps by name (`has` reads `b.entries[kind]`, megamorphic); a source learned here needs no other.
      const learnedHere = b.entries.network.has(bound(net)) && b.entries.userAgent.has(bound(family));
      const other = learnedHere ? undefined : (otherSource(b.recentSources, net, family, call.startMs) ?? otherSource(earlier, net, family, call.startMs));
      // Keys are built for candidates only: most calls have none.
      const key = other && !learnedHere ? `reuse:${[net, other.network].sort().join('|')}` : '';
      if (other && !learnedHere && !f?.keys.includes(key) && !ctx.suppressed('credential-reuse', key)) {
        const minutes = Math.max(1, Math.round(Math.abs(call.startMs - other.ms) / 60_000));
        f = add(
          f,
          key,
          call,
          `Within ${minutes} minute${minutes === 1 ? '' : 's'} ${displayName(ctx)} acted from network ${q(other.network)} with ${q(other.family)} (trace ${other.traceId}) and from network ${q(net)} with ${q(family)} in this chain: two places and two clients at once.`,
        );
        f.evidence.otherSource = other;
      }
      if (i < calls.length - 1) (earlier ??= []).push({ network: net, family, ms: call.startMs, traceId: call.traceId, spanId: call.spanId });
    }
  }
  if (!f) return undefined;
  const offending = f.offending.sort((a, c) => a.startMs - c.startMs);
  return {
    detector: 'credential-reuse',
    keys: f.keys,
    severity: 'high',
    reach: true,
    external: false,
    sensitive: offending.some((c) => ctx.sensitive(c)),
    title: `${displayName(ctx)}'s credentials appear to be used by someone else`,
    explanation: f.sentences.join(' '),
    spanIds: unique(offending.map((c) => c.spanId)),
    eventMs: offending[0]!.startMs,
    techniques: [T_VALID_CLOUD_ACCOUNTS],
    evidence: f.evidence,
  };
}

/** What `credential-reuse` found in a chain so far. */
interface Found {
  keys: string[];
  offending: Call[];
  sentences: string[];
  evidence: Record<string, unknown>;
}

/** Adds one finding key with its call and sentence (what is found is made with the first). */
function add(f: Found | undefined, key: string, call: Call, sentence: string): Found {
  const into = f ?? { keys: [], offending: [], sentences: [], evidence: {} };
  into.keys.push(key);
  into.offending.push(call);
  into.sentences.push(sentence);
  return into;
}

/** The first source in `list` with another network and another client family near `ms`. */
function otherSource(list: readonly RecentSource[] | undefined, net: string, family: string, ms: number): RecentSource | undefined {
  if (!list) return undefined;
  for (const r of list) {
    if (r.network !== net && r.family !== family && Math.abs(r.ms - ms) <= CREDENTIAL_REUSE_WINDOW_MS) return r;
  }
  return undefined;
}

/** Remembers the sources of a chain's calls once the chain is analysed. */
export function rememberSources(recent: RecentSource[], calls: readonly Call[]): void {
  for (const c of calls) {
    if (c.source?.network && c.source.userAgent) {
      const family = userAgentFamily(c.source.userAgent);
      // No new entry when the list holds the pair at this time or later already (most calls: an identity keeps its sources).
      if (knownSince(recent, c.source.network, family, c.startMs)) continue;
      rememberSource(recent, { network: c.source.network, family, ms: c.startMs, traceId: c.traceId, spanId: c.spanId });
    }
  }
}

/** Whether the list has the (network, family) pair at `ms` or later (rememberSource would keep the list as it is). */
function knownSince(recent: readonly RecentSource[], network: string, family: string, ms: number): boolean {
  for (const r of recent) if (r.network === network && r.family === family) return r.ms >= ms;
  return false;
}

/** Adds a source to the bounded recent list, oldest first (one entry per network and family, newest kept). */
export function rememberSource(recent: RecentSource[], s: RecentSource): void {
  let i = 0;
  while (i < recent.length && (recent[i]!.network !== s.network || recent[i]!.family !== s.family)) i++;
  if (i < recent.length) {
    if (recent[i]!.ms >= s.ms) return;
    recent.splice(i, 1);
  }
  // After every source no newer than it (where a stable sort of the list would put it).
  let at = recent.length;
  while (at > 0 && recent[at - 1]!.ms > s.ms) at--;
  if (at === recent.length) recent.push(s);
  else recent.splice(at, 0, s);
  if (recent.length > MAX_RECENT_SOURCES) recent.splice(0, recent.length - MAX_RECENT_SOURCES);
}
