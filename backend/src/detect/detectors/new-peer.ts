import type { Call } from '@conduct/processor';
import { bound, has, topEntries } from '../../learn/index.js';
import { displayName, listWithCounts, q, unique, type DetectionContext, type Finding } from '../finding.js';
import {
  T_EXFILTRATION_OVER_WEB_SERVICE,
  T_LATERAL_MOVEMENT_CLOUD_SERVICES,
  techniquesForOperation,
} from '../techniques.js';

/** Usual peers named in an explanation. */
export const EXPLAIN_TOP_PEERS = 6;

/**
 * `new-peer`: an enforcing identity contacts a peer, or touches a target account, that its
 * baseline does not hold. Medium; high for an external peer, a sensitive operation or another
 * account.
 */
export function newPeer(ctx: DetectionContext): Finding | undefined {
  if (ctx.learning.status !== 'enforcing') return undefined;
  const b = ctx.baseline;
  const ownAccounts = b.entries.account;
  // Made for the first new peer or account only: most chains have none.
  let foundPeers: Map<string, Call[]> | undefined;
  let foundAccounts: Map<string, Call[]> | undefined;
  // Maps by name: `has` reads `b.entries[kind]`, a megamorphic load at every call of every chain.
  const peers = b.entries.peer;
  const targetAccounts = b.entries.targetAccount;
  for (const call of ctx.calls) {
    if (!peers.has(bound(call.peer)) && !ctx.suppressed('new-peer', `peer:${call.peer}`)) {
      foundPeers ??= new Map();
      foundPeers.set(call.peer, [...(foundPeers.get(call.peer) ?? []), call]);
    }
    const acct = call.account;
    if (
      acct &&
      !targetAccounts.has(bound(acct)) &&
      !ownAccounts.has(acct) &&
      acct !== call.source?.account &&
      !ctx.suppressed('new-peer', `account:${acct}`)
    ) {
      foundAccounts ??= new Map();
      foundAccounts.set(acct, [...(foundAccounts.get(acct) ?? []), call]);
    }
  }
  if (!foundPeers && !foundAccounts) return undefined;
  const newPeers = foundPeers ?? new Map<string, Call[]>();
  const newAccounts = foundAccounts ?? new Map<string, Call[]>();

  const offending = [...newPeers.values(), ...newAccounts.values()].flat().sort((a, b) => a.startMs - b.startMs);
  const first = offending[0]!;
  const external = offending.some((c) => newPeers.has(c.peer) && c.external);
  const sensitiveCalls = offending.filter((c) => ctx.sensitive(c));
  const usual = topEntries(b, 'peer', EXPLAIN_TOP_PEERS);
  const sentences: string[] = [
    `Normally ${displayName(ctx)} contacts ${b.entries.peer.size} peer${b.entries.peer.size === 1 ? '' : 's'}: ${listWithCounts(usual)}.`,
  ];
  // One sentence for all new peers, each named once with what it was called for.
  if (newPeers.size > 0) {
    const described = [...newPeers].map(([peer, calls]) => {
      const ops = unique(calls.map((c) => c.operation)).slice(0, 5);
      return `${q(peer)}${calls[0]!.external ? ' (external)' : ''}: ${ops.map(q).join(', ')}, ${calls.length} call${calls.length === 1 ? '' : 's'}`;
    });
    sentences.push(
      `In this chain it called ${newPeers.size === 1 ? 'a peer' : `${newPeers.size} peers`} never seen for this identity: ${described.join('; ')}.`,
    );
  }
  if (newAccounts.size > 0) {
    const known = unique([...b.entries.targetAccount.keys(), ...ownAccounts.keys()]);
    sentences.push(
      `It reached into account${newAccounts.size === 1 ? '' : 's'} ${[...newAccounts.keys()].map(q).join(', ')}; its baseline only knows ${known.length ? known.slice(0, 6).map(q).join(', ') : 'no accounts'}.`,
    );
  }
  for (const c of sensitiveCalls.slice(0, 3)) sentences.push(`${q(c.operation)} is sensitive: ${ctx.sensitive(c)}.`);

  const techniques = new Set<string>();
  for (const c of offending) {
    for (const t of techniquesForOperation(c.operation)) techniques.add(t);
    if (newPeers.has(c.peer)) {
      if (c.external && (c.peerKind === 'http' || c.peerKind === 'virtual')) techniques.add(T_EXFILTRATION_OVER_WEB_SERVICE);
      // An internal service, whether stitched or only named by the caller's URL or address.
      else if (!c.external && (c.peerKind === 'service' || c.peerKind === 'http' || c.peerKind === 'virtual')) techniques.add(T_LATERAL_MOVEMENT_CLOUD_SERVICES);
    }
  }
  // The database calls it always makes, answered by another host: a failover or a new replica.
  const replicas = [...newPeers.values()].filter((calls) => calls.every((c) => sameDatabaseWork(b, c)));
  const failover = newAccounts.size === 0 && newPeers.size > 0 && replicas.length === newPeers.size;
  if (failover) sentences.push('Every call to it is a database operation this identity already performs: the same database at another host (a failover or a new replica), so this stays low.');
  const list = (items: string[]) => `${items.slice(0, 3).join(', ')}${items.length > 3 ? ', ...' : ''}`;
  const peerPart = newPeers.size === 0 ? '' : `contacted ${newPeers.size === 1 ? 'a new peer' : `${newPeers.size} new peers`}: ${list([...newPeers.keys()])}`;
  const accountPart =
    newAccounts.size === 0 ? '' : `reached into ${newAccounts.size === 1 ? 'another account' : `${newAccounts.size} other accounts`}: ${list([...newAccounts.keys()])}`;
  return {
    detector: 'new-peer',
    keys: [...[...newPeers.keys()].map((p) => `peer:${p}`), ...[...newAccounts.keys()].map((a) => `account:${a}`)],
    severity: external || sensitiveCalls.length > 0 || newAccounts.size > 0 ? 'high' : failover ? 'low' : 'medium',
    reach: true,
    external,
    sensitive: sensitiveCalls.length > 0,
    // The title counts what the evidence lists: new peers and other accounts apart.
    title: `${displayName(ctx)} ${[peerPart, accountPart].filter(Boolean).join(' and ')}`,
    explanation: sentences.join(' '),
    spanIds: unique(offending.map((c) => c.spanId)),
    eventMs: first.startMs,
    techniques: [...techniques],
    evidence: {
      usualPeers: usual,
      newPeers: [...newPeers.keys()],
      newAccounts: [...newAccounts.keys()],
    },
  };
}

/** An internal database call whose operation (statement and table) the identity already performs. */
function sameDatabaseWork(b: DetectionContext['baseline'], call: Call): boolean {
  return call.peerKind === 'database' && !call.external && has(b, 'operation', call.operation);
}
