import type { Chain, TraceSummary } from '@conduct/processor';
import { decodeCalls, type TextTable } from './call-codec.js';
import type { Alert } from '../alerts/model.js';
import type { BaselineEntryRecord, BaselineRecord, DeliveryRecord, DeliveryState, EdgeRecord, IdentityRecord, OutboxEntry, OutboxEventKind } from './contracts.js';
import { traceIdFromBytes, traceIdToBytes } from './trace-id.js';

/**
 * Backend-neutral rows: the records the contracts answer, built from the columns every backend
 * stores (identities, edges, baselines and their entries, trace summaries, chains), and what a
 * batch of chains adds to its identities and edges. No SQL here: each backend selects its rows
 * and hands them over. `text` undoes a backend's own text encoding (PostgreSQL's escape of
 * U+0000, postgres/text.ts); SQLite stores texts as they are. Booleans come as SQLite's 0/1 or
 * PostgreSQL's true/false.
 */

/** Reads a stored text column back. */
export type StoredText = (stored: string) => string;
const asStored: StoredText = (stored) => stored;

const isTrue = (v: boolean | number): boolean => v === true || v === 1;

/** Services kept per trace summary. */
export const MAX_TRACE_SERVICES = 64;

/** A finite number rounded to whole units, else `fallback`: what the stores write for times and counts. */
export function finite(value: unknown, fallback = 0): number {
  return typeof value === 'number' && Number.isFinite(value) ? Math.round(value) : fallback;
}

/** The chain's trace id bytes when a store takes the chain, else undefined. */
export function acceptable(chain: Chain): Buffer | undefined {
  if (!chain || typeof chain.identity !== 'string' || !Array.isArray(chain.calls)) return undefined;
  return traceIdToBytes(chain.traceId);
}

/**
 * `acceptable` for the chains of one write in order: a trace's chains come together, so the
 * bytes of a trace id that repeats the previous chain's are not decoded (and allocated) again.
 */
export function acceptableRun(): (chain: Chain) => Buffer | undefined {
  let lastId: unknown;
  let lastBytes: Buffer | undefined;
  return (chain) => {
    if (!chain || typeof chain.identity !== 'string' || !Array.isArray(chain.calls)) return undefined;
    if (chain.traceId !== lastId) {
      lastId = chain.traceId;
      lastBytes = traceIdToBytes(chain.traceId);
    }
    return lastBytes;
  };
}

/** A row of `identities`, with its number of distinct peers. */
export interface IdentityRow {
  id: string;
  kind: string;
  display_name: string | null;
  first_seen_ms: number;
  last_seen_ms: number;
  calls: number;
  chains: number;
  peers: number;
}

export function identityFromRow(row: IdentityRow, text: StoredText = asStored): IdentityRecord {
  return {
    id: text(row.id),
    kind: text(row.kind),
    ...(row.display_name !== null ? { displayName: text(row.display_name) } : {}),
    firstSeenMs: row.first_seen_ms,
    lastSeenMs: row.last_seen_ms,
    calls: row.calls,
    chains: row.chains,
    peers: row.peers,
  };
}

/** A row of `edges`. */
export interface EdgeRow {
  identity: string;
  service: string;
  peer: string;
  peer_kind: string;
  external: boolean | number;
  operation: string;
  count: number;
  first_seen_ms: number;
  last_seen_ms: number;
}

export function edgeFromRow(row: EdgeRow, text: StoredText = asStored): EdgeRecord {
  return {
    identity: text(row.identity),
    service: text(row.service),
    peer: text(row.peer),
    peerKind: text(row.peer_kind),
    external: isTrue(row.external),
    operation: text(row.operation),
    count: row.count,
    firstSeenMs: row.first_seen_ms,
    lastSeenMs: row.last_seen_ms,
  };
}

/** A row of `baseline_identities`: rate state and recent sources as JSON text. */
export interface BaselineRow {
  identity: string;
  kind: string;
  display_name: string | null;
  grp: number;
  first_ms: number;
  last_ms: number;
  calls: number;
  enforcing_since_ms: number | null;
  compromised: boolean | number;
  dropped: number;
  last_sweep_ms: number;
  rate: string;
  recent_sources: string;
}

export function baselineFromRow(row: BaselineRow, text: StoredText = asStored): BaselineRecord {
  return {
    identity: text(row.identity),
    kind: text(row.kind),
    ...(row.display_name !== null ? { displayName: text(row.display_name) } : {}),
    group: row.grp,
    firstMs: row.first_ms,
    lastMs: row.last_ms,
    calls: row.calls,
    ...(row.enforcing_since_ms !== null ? { enforcingSinceMs: row.enforcing_since_ms } : {}),
    compromised: isTrue(row.compromised),
    dropped: row.dropped,
    lastSweepMs: row.last_sweep_ms,
    rate: JSON.parse(row.rate) as unknown,
    recentSources: JSON.parse(row.recent_sources) as unknown,
  };
}

/** A row of `baseline_entries`. */
export interface BaselineEntryRow {
  identity: string;
  kind: string;
  key: string;
  count: number;
  first_ms: number;
  last_ms: number;
}

export function baselineEntryFromRow(row: BaselineEntryRow, text: StoredText = asStored): BaselineEntryRecord {
  return { kind: text(row.kind), key: text(row.key), count: row.count, firstMs: row.first_ms, lastMs: row.last_ms };
}

/** A row of `traces`: one part of a trace as it was written (a trace has several after late parts). */
export interface TraceSummaryRow {
  start_ms: number;
  end_ms: number;
  spans: number;
  /** Its services, as stored. */
  services: readonly string[];
}

/** One summary of a trace's parts: earliest start, latest end, spans added up, services once each. */
export function mergeTraceSummary(traceId: Buffer, rows: readonly TraceSummaryRow[], text: StoredText = asStored): TraceSummary | undefined {
  if (rows.length === 0) return undefined;
  const services = new Set<string>();
  let startMs = Infinity;
  let endMs = -Infinity;
  let spans = 0;
  for (const r of rows) {
    startMs = Math.min(startMs, r.start_ms);
    endMs = Math.max(endMs, r.end_ms);
    spans += r.spans;
    for (const s of r.services) services.add(text(s));
  }
  return { traceId: traceIdFromBytes(traceId), startMs, endMs, spans, services: [...services] };
}

/** A stored chain with its texts read back; `calls` as stored (binary, or JSON text). */
export interface ChainColumns {
  traceId: Buffer;
  identity: string;
  identityKind: string;
  displayName: string | null;
  startMs: number;
  endMs: number;
  calls: string | Uint8Array;
  /** Wall-clock ms the chain was received at; null when it was not recorded. */
  receivedMs: number | null;
}

/** The chain's received time as its column holds it: whole ms, or null when it has none. */
export function receivedOf(chain: Chain): number | null {
  return typeof chain.receivedMs === 'number' && Number.isFinite(chain.receivedMs) ? Math.round(chain.receivedMs) : null;
}

export function chainFromColumns(c: ChainColumns, texts: TextTable): Chain {
  const traceId = traceIdFromBytes(c.traceId);
  const calls = decodeCalls(c.calls, { traceId, identity: c.identity, identityKind: c.identityKind, startMs: c.startMs }, texts);
  return {
    traceId,
    identity: c.identity,
    identityKind: c.identityKind as Chain['identityKind'],
    ...(c.displayName !== null ? { displayName: c.displayName } : {}),
    startMs: c.startMs,
    endMs: c.endMs,
    ...(c.receivedMs !== null ? { receivedMs: Number(c.receivedMs) } : {}),
    calls,
  };
}

/** What chains add to an edge: identity x service x peer x operation, `key` their JSON. */
export interface EdgeCount {
  key: string;
  identity: string;
  service: string;
  peer: string;
  operation: string;
  count: number;
}

/** What chains add to their identities (calls, chains) and edges (calls), as the writers count them. */
export function chainCounts(chains: readonly Chain[]): { identities: Map<string, { calls: number; chains: number }>; edges: Map<string, EdgeCount> } {
  const identities = new Map<string, { calls: number; chains: number }>();
  const edges = new Map<string, EdgeCount>();
  for (const chain of chains) {
    const i = identities.get(chain.identity) ?? { calls: 0, chains: 0 };
    identities.set(chain.identity, i);
    i.calls += chain.calls.length;
    i.chains++;
    for (const call of chain.calls) {
      const edge = { identity: chain.identity, service: String(call.service ?? ''), peer: String(call.peer ?? ''), operation: String(call.operation ?? '') };
      const key = JSON.stringify([edge.identity, edge.service, edge.peer, edge.operation]);
      const e = edges.get(key);
      if (e) e.count++;
      else edges.set(key, { key, ...edge, count: 1 });
    }
  }
  return { identities, edges };
}

/** A row of the alert outbox (SQLite migration 060, PostgreSQL 020). */
export interface OutboxRow {
  alert_id: string;
  seq: number;
  sink: string;
  event: string;
  payload: string;
  state: string;
  attempts: number;
  due_ms: number;
  last_error: string | null;
  created_ms: number;
  done_ms: number | null;
}

/** Longest error text kept per delivery (a receiver's answer is attacker-reachable). */
export const MAX_DELIVERY_ERROR_CHARS = 1024;

export function outboxEntryFromRow(row: OutboxRow, text: StoredText = asStored): OutboxEntry {
  return {
    alertId: text(row.alert_id),
    seq: row.seq,
    sink: text(row.sink),
    event: row.event as OutboxEventKind,
    alert: JSON.parse(row.payload) as Alert,
    attempts: row.attempts,
    createdMs: row.created_ms,
  };
}

export function deliveryFromRow(row: OutboxRow, text: StoredText = asStored): DeliveryRecord {
  return {
    alertId: text(row.alert_id),
    seq: row.seq,
    sink: text(row.sink),
    event: row.event as OutboxEventKind,
    state: row.state as DeliveryState,
    attempts: row.attempts,
    ...(row.last_error !== null ? { lastError: text(row.last_error) } : {}),
    createdMs: row.created_ms,
    ...(row.done_ms !== null ? { doneMs: row.done_ms } : {}),
    ...(row.state === 'pending' ? { dueMs: row.due_ms } : {}),
  };
}
