import { attributeKeyId, ColumnAttrs, PREFIXED, SpanKind, StatusCode, type AttrReader, type SpanColumns } from '@conduct/proto';
import { K } from '../keys.js';
import type { Call, Chain, PeerKind, SourceContext } from '../model.js';
import { CALL_EXTERNAL, CALL_PATH_OPERATION, CallTable } from './call-table.js';
import { serviceOf, type IdentityResolver, type ResolvedIdentity, type TraceSpan } from '../identity/index.js';
import * as sc from '../semconv.js';
import {
  ALL_LETTERS,
  clean,
  DB_KEYS,
  firstOf,
  GEN_AI_KEYS,
  HTTP_KEYS,
  HTTP_OR_URL_KEYS,
  letterOf,
  MAX_TEXT_LENGTH,
  MAX_USER_AGENT_LENGTH,
  MESSAGING_KEYS,
  text,
} from './attrs.js';
import { bareHost, isPrivateHost, networkOf } from './address.js';
import { joinedMemo, memoised } from './memo.js';
import { operationInto, type Operation } from './operation.js';
import { INSERTION_SORT_MAX, orderRows, parentsOfRows, type ParentOf } from './order.js';
import { itemsOfSpans, TraceTable, type SpanItems } from './trace-table.js';

/** Caller recorded on a server-side-only call: nobody instrumented made it. */
export const UNINSTRUMENTED_CALLER = 'client';
/** Peer of an outbound span that names no peer at all. */
export const UNKNOWN_PEER = 'unknown';
/** Prefix of a tool peer. */
export const TOOL_PEER_PREFIX = 'tool:';
/**
 * Identity of the boundary calls of a later part of a trace (DeriveOptions.boundary): the
 * server-side-only view of a server span whose caller's span is in an earlier part and not in
 * memory. Never an identity's call: the consumer stitches it to the stored call of that caller
 * span, or drops it.
 */
export const BOUNDARY_IDENTITY = 'conduct:boundary';

export interface DerivedTrace {
  calls: Call[];
  chains: Chain[];
}

/**
 * An outbound span of a completed trace that found no server span in it, kept for late ones: span
 * `index` of `cols`. Handed to `remember` as a span of its request's columns; settleRemembered
 * copies it out, with the others remembered meanwhile, into columns of their own, so that
 * remembering it does not keep its request in memory.
 */
export interface RememberedClient {
  cols: SpanColumns;
  index: number;
  /** The caller service (`serviceOf(resource)`). */
  service: string;
  /** The span's acting identity when its trace completed. */
  identity: ResolvedIdentity;
}

/**
 * Late stitching (all optional). A completed trace's unmatched outbound spans are handed to
 * `remember` (keyed by their span id), and its server spans whose parent is not in the trace to
 * `rememberServer` (keyed by that parent's id). In a later part of the trace, a span whose parent
 * is not in the spans given is looked up with `takeParent`, and an outbound span with no server
 * span in them with `takeChild`; a remembered span of another service makes a stitched call with
 * it, as the two would have in one trace.
 */
export interface DeriveOptions {
  remember?(traceId: string, spanId: string, client: RememberedClient): void;
  takeParent?(traceId: string, spanId: string, calleeService: string): RememberedClient | undefined;
  rememberServer?(traceId: string, parentSpanId: string, server: RememberedClient): void;
  takeChild?(traceId: string, spanId: string, callerService: string): RememberedClient | undefined;
  /**
   * A later part's server span whose caller's span was not remembered (a restart, or forgotten)
   * and which names no principal of its own also yields a server-side-only call owned by
   * BOUNDARY_IDENTITY, for the consumer to stitch to what it stored of the caller's span.
   */
  boundary?: boolean;
}

const BOUNDARY: ResolvedIdentity = { id: BOUNDARY_IDENTITY, kind: 'boundary' };

/** A completed trace as the stitcher hands it over: its id and its spans as (columns, index) pairs. */
export interface TraceItems {
  traceId: string;
  items: SpanItems;
}

/**
 * Turns the spans of one completed trace into calls and per-identity chains (processor/README.md,
 * "Calls"). Pure: no I/O, no clock. Spans may come in any order; a span id seen twice keeps its
 * first span. The object form of {@link deriveItems} (tests, callers holding span objects).
 */
export function deriveTrace(spans: readonly TraceSpan[], resolver: IdentityResolver, options: DeriveOptions = {}): DerivedTrace {
  return deriveItems(itemsOfSpans(spans), resolver, options);
}

// One table and one acting list for every trace: derivation is synchronous and copies out what
// its calls keep. Spans are read by index from their columns; a span costs no object of its own.
const table = new TraceTable();
const acting: (ResolvedIdentity | undefined)[] = [];
/** Per span: 1 when its call was emitted from its child's server side, 2 when it stitched late. */
const marks: number[] = [];
/**
 * Readers for the two sides of a call (the table's own reader serves the identity rules); each
 * holds the columns of the last span it read until it is moved.
 */
let clientReader: ColumnAttrs | undefined;
let serverReader: ColumnAttrs | undefined;
const clientAttrs = (cols: SpanColumns, i: number) => (clientReader ? clientReader.moveTo(cols, i) : (clientReader = new ColumnAttrs(cols, i)));
const serverAttrs = (cols: SpanColumns, i: number) => (serverReader ? serverReader.moveTo(cols, i) : (serverReader = new ColumnAttrs(cols, i)));

const STITCHED = 1;
const LATE_STITCHED = 2;

/**
 * Spans remembered for later parts since the last settleRemembered, by their request's columns.
 * Copied out together: a request's remembered spans come from many traces (with 4-span traces
 * about 30 a request), and one copy each was ~1 KB of heap in objects of its own, up to the
 * 50,000 remembered (bench/README.md, "Remembered spans of completed traces").
 */
const uncopied = new Map<SpanColumns, RememberedClient[]>();

/** A remembered span (span i of `cols`), listed to be copied out by settleRemembered. */
function toCopy(cols: SpanColumns, i: number, service: string, identity: ResolvedIdentity): RememberedClient {
  const remembered: RememberedClient = { cols, index: i, service, identity };
  const list = uncopied.get(cols);
  if (list === undefined) uncopied.set(cols, [remembered]);
  else list.push(remembered);
  return remembered;
}

/**
 * Copies the spans remembered (DeriveOptions.remember, rememberServer) by the derivations since the
 * last call out of their requests' columns, the spans of each request into one set of columns of
 * their own, and points each remembered span at its copy. Until then a remembered span reads
 * from its request's columns (correct, but it holds the request): call this after every run of
 * deriveInto calls (deriveItems does).
 */
export function settleRemembered(): void {
  for (const [cols, list] of uncopied) {
    const copy = cols.copySpans(list.map((r) => r.index));
    for (let k = 0; k < list.length; k++) {
      list[k]!.cols = copy;
      list[k]!.index = k;
    }
  }
  uncopied.clear();
}

/** The rows of deriveItems' calls and chains, before they are made objects. */
const objectRows = new CallTable();

/**
 * deriveTrace for a completed trace as the stitcher holds it: span and parent ids compared as
 * bytes, attributes read from the columns, and only what a call keeps made into strings. The
 * object form of {@link deriveInto}.
 */
export function deriveItems(trace: TraceItems, resolver: IdentityResolver, options: DeriveOptions = {}): DerivedTrace {
  const rows = objectRows;
  rows.clear();
  try {
    deriveInto(trace, resolver, options, rows);
  } finally {
    settleRemembered();
  }
  const calls = rows.callObjects();
  const chains = rows.chainObjects(calls);
  rows.clear();
  return { calls, chains };
}

/**
 * Derives the calls and chains of one completed trace into `into`, after the rows it holds: its
 * calls as call rows, its chains (ordered by start) as chain rows. Returns how many calls. When
 * it throws, `into` is as it was.
 */
export function deriveInto(trace: TraceItems, resolver: IdentityResolver, options: DeriveOptions, into: CallTable): number {
  const t = table.load(trace.traceId, trace.items);
  const n = t.n;
  const first = into.n;
  into.mark();
  try {
    deriveTable(t, resolver, options, into);
    return into.n - first;
  } catch (err) {
    into.rollBack();
    throw err;
  } finally {
    t.unload();
    lastResource = undefined;
    lastFacts = undefined;
    names.clear();
    parentsOf = undefined;
    tableParents = undefined;
    // Kept at their size for the next trace (resolveTable and deriveTable set the first n slots;
    // emptying them by length freed and grew their storage for every trace: 0.4% of the pipeline
    // thread), unless a large trace grew them.
    if (n > MAX_KEPT_SCRATCH) acting.length = marks.length = 0;
  }
}

/** Slots the per-span scratch arrays keep between traces at most. */
const MAX_KEPT_SCRATCH = 4_096;

/** Identities of a trace whose display names are found by a scan; a trace with more goes through a Map. */
const SCAN_NAMES = 16;

/**
 * Display names by identity id of the trace being derived, the first name seen for each. Module
 * state rather than a Map and closures per trace (like the table, derivation is synchronous): a
 * trace names a few, and a Map per trace with one was 3% of the bytes derive allocated.
 */
class TraceNames {
  private readonly ids: string[] = [];
  private readonly texts: string[] = [];
  private count = 0;
  /** Past SCAN_NAMES names (a hostile trace): a Map, so that a lookup is not a scan of thousands. */
  private map: Map<string, string> | undefined;

  add(id: string, text: string): void {
    if (this.map !== undefined) {
      if (!this.map.has(id)) this.map.set(id, text);
      return;
    }
    if (this.get(id) !== undefined) return;
    this.ids[this.count] = id;
    this.texts[this.count++] = text;
    if (this.count > SCAN_NAMES) {
      this.map = new Map();
      for (let i = 0; i < this.count; i++) this.map.set(this.ids[i]!, this.texts[i]!);
    }
  }

  get(id: string): string | undefined {
    if (this.map !== undefined) return this.map.get(id);
    for (let i = 0; i < this.count; i++) if (this.ids[i] === id) return this.texts[i];
    return undefined;
  }

  /** Forgets the trace's names (and the strings: the slots are overwritten). */
  clear(): void {
    for (let i = 0; i < this.count; i++) this.ids[i] = this.texts[i] = '';
    this.count = 0;
    this.map = undefined;
  }
}

const names = new TraceNames();

/** Notes the display name of a call's identity. */
function addCall(who: ResolvedIdentity): void {
  if (who.displayName) names.add(who.id, who.displayName);
}

/** The acting identity of span k (resolveTable has filled `acting`). */
function identityOf(t: TraceTable, resolver: IdentityResolver, k: number): ResolvedIdentity {
  return acting[k] ?? resolver.resourceIdentity(t.resource[k]!);
}

function deriveTable(t: TraceTable, resolver: IdentityResolver, options: DeriveOptions, into: CallTable): void {
  const n = t.n;
  resolver.resolveTable(t, acting);
  for (let k = 0; k < n; k++) marks[k] = 0;
  names.clear();
  const first = into.n;

  // Stitched calls first: they mark the client spans that must not be emitted again.
  for (let child = 0; child < n; child++) {
    const parent = t.parent[child]!;
    if (parent < 0 && options.takeParent && t.hasParent(child)) {
      const traceId = t.traceIdOf(child);
      const client = options.takeParent(traceId, t.parentSpanIdOf(child), t.service[child]!);
      if (client) {
        marks[child] |= LATE_STITCHED;
        const who = resolver.attrsIdentity(t.attrs(child)) ?? client.identity;
        stitchedCall(into, traceId, client.cols, client.index, client.service, t.cols[child]!, t.at[child]!, t.service[child]!, who);
        addCall(who);
      }
      continue;
    }
    if (parent < 0 || parent === child || t.service[parent] === t.service[child]) continue;
    marks[parent] |= STITCHED;
    const who = resolver.attrsIdentity(t.attrs(child)) ?? identityOf(t, resolver, parent);
    stitchedCall(into, t.traceIdOf(parent), t.cols[parent]!, t.at[parent]!, t.service[parent]!, t.cols[child]!, t.at[child]!, t.service[child]!, who);
    addCall(who);
  }

  for (let k = 0; k < n; k++) {
    const cols = t.cols[k]!;
    const i = t.at[k]!;
    const kind = cols.kinds[i]!;
    const letters = cols.lettersOf(i);
    const service = t.service[k]!;
    if (marks[k]! & STITCHED) {
      // Its call was emitted from the server side; a stitched server span may still be an entry.
    } else if (letters & GEN_AI_KEYS && text(t.attrs(k), K.GEN_AI_OPERATION_NAME) === sc.GEN_AI_EXECUTE_TOOL) {
      const who = identityOf(t, resolver, k);
      toolCall(into, t.traceIdOf(k), cols, i, service, who);
      addCall(who);
    } else if (isOutbound(kind, letters)) {
      const traceId = t.traceIdOf(k);
      const server = options.takeChild?.(traceId, t.spanIdOf(k), service);
      if (server) {
        // Its server span came in an earlier part of the trace.
        const who = resolver.attrsIdentity(serverAttrs(server.cols, server.index)) ?? identityOf(t, resolver, k);
        stitchedCall(into, traceId, cols, i, service, server.cols, server.index, server.service, who);
        addCall(who);
      } else {
        const who = identityOf(t, resolver, k);
        const c = outboundCall(into, traceId, cols, i, service, who);
        addCall(who);
        // Only calls whose callee may yet send its spans: not databases, not external peers.
        if (options.remember && into.protocol[c] !== 'db' && !(into.flags[c]! & CALL_EXTERNAL)) {
          options.remember(traceId, into.spanId[c]!, toCopy(cols, i, service, who));
        }
      }
    }
    if ((kind === SpanKind.SERVER || kind === SpanKind.CONSUMER) && t.parent[k]! < 0 && !(marks[k]! & LATE_STITCHED)) {
      const who = resolver.attrsIdentity(t.attrs(k));
      const traceId = t.traceIdOf(k);
      if (who) {
        serverOnlyCall(into, traceId, cols, i, service, who);
        addCall(who);
      } else if (options.boundary && t.hasParent(k)) serverOnlyCall(into, traceId, cols, i, service, BOUNDARY);
      // Its caller's span may yet come, in a later part of the trace.
      if (options.rememberServer && t.hasParent(k)) {
        options.rememberServer(traceId, t.parentSpanIdOf(k), toCopy(cols, i, service, who ?? identityOf(t, resolver, k)));
      }
    }
  }

  tableParents = undefined;
  parentsOf = t;
  chainsInto(into, first, names, tableParentOf);
}

const NO_NAMES: ReadonlyMap<string, string> = new Map();

/** The table whose parent links `tableParentOf` reads while its chains are made. */
let parentsOf: TraceTable | undefined;
let tableParents: Map<string, string> | undefined;

/** The parent links by span id of `parentsOf`, made only when a chain has calls that start together. */
function tableParentOf(id: string): string | undefined {
  if (!tableParents) {
    const t = parentsOf!;
    tableParents = new Map();
    for (let k = 0; k < t.n; k++) tableParents.set(t.spanIdOf(k), t.parentSpanIdOf(k));
  }
  return tableParents.get(id) || undefined;
}

function isOutbound(kind: number, letters: number): boolean {
  if (kind === SpanKind.CLIENT || kind === SpanKind.PRODUCER) return true;
  return kind === SpanKind.UNSPECIFIED && (letters & PREFIXED) !== 0;
}

function stitchedCall(
  into: CallTable,
  traceId: string,
  cCols: SpanColumns,
  ci: number,
  cService: string,
  sCols: SpanColumns,
  si: number,
  sService: string,
  who: ResolvedIdentity,
): number {
  const c = clientAttrs(cCols, ci);
  const s = serverAttrs(sCols, si);
  const cLetters = c.letters;
  const sLetters = s.letters;
  const op = pickOperation(cCols.names[ci]!, c, cLetters, operationInto(serverOp, sCols.names[si]!, s, sLetters));
  const facts = factsOfSpan(cCols, ci);
  const row = baseCall(into, traceId, cCols, ci, cService, c, who, op, facts);
  into.serverSpanId[row] = sCols.spanId(si);
  into.peer[row] = sService;
  into.peerKind[row] = 'service';
  const cStatus = cCols.statuses[ci]!;
  const sStatus = sCols.statuses[si]!;
  into.status[row] = statusOf(cStatus === StatusCode.ERROR || sStatus === StatusCode.ERROR ? StatusCode.ERROR : Math.max(cStatus, sStatus));
  const httpStatus = httpStatusOf(s, sLetters);
  into.httpStatus[row] = httpStatus === undefined ? (httpStatusOf(c, cLetters) ?? NaN) : httpStatus;
  setTarget(into, row, c, cLetters, s, sLetters);
  into.source[row] = withClientSide(facts, s);
  return row;
}

/** Strength of an operation source: a stronger one describes a call better. */
const SOURCE_RANK = { route: 3, semantic: 2, path: 1, name: 0 } as const;

/**
 * Scratch operations every call is described through (derivation is synchronous; baseCall copies
 * the fields out): no operation object per span.
 */
const clientOp: Operation = { operation: '', source: 'name', protocol: '' };
const serverOp: Operation = { operation: '', source: 'name', protocol: '' };

/**
 * The server side's route wins (the client's span is then not described at all: most HTTP calls);
 * else whichever side has the stronger description. Either scratch.
 */
function pickOperation(clientName: string, clientAttrs: AttrReader, clientLetters: number, server: Operation): Operation {
  if (server.source === 'route') return server;
  const client = operationInto(clientOp, clientName, clientAttrs, clientLetters);
  if (SOURCE_RANK[client.source] > SOURCE_RANK[server.source]) return client;
  if (server.protocol === 'internal') server.protocol = client.protocol;
  return server;
}

/** The peer an outbound call's span names (peerInto's scratch: copied into the call's row). */
const peerScratch: Pick<Call, 'peer' | 'peerKind' | 'external'> = { peer: UNKNOWN_PEER, peerKind: 'virtual', external: false };

function outboundCall(into: CallTable, traceId: string, cols: SpanColumns, i: number, service: string, who: ResolvedIdentity): number {
  const attrs = clientAttrs(cols, i);
  const letters = attrs.letters;
  const op = operationInto(clientOp, cols.names[i]!, attrs, letters);
  const row = baseCall(into, traceId, cols, i, service, attrs, who, op, factsOfSpan(cols, i));
  peerInto(peerScratch, attrs, op.protocol, letters);
  into.peer[row] = peerScratch.peer;
  into.peerKind[row] = peerScratch.peerKind;
  if (peerScratch.external) into.flags[row] |= CALL_EXTERNAL;
  setTarget(into, row, attrs, letters);
  return row;
}

function toolCall(into: CallTable, traceId: string, cols: SpanColumns, i: number, service: string, who: ResolvedIdentity): void {
  const attrs = clientAttrs(cols, i);
  const tool = text(attrs, K.GEN_AI_TOOL_NAME) ?? UNKNOWN_PEER;
  const row = baseCall(into, traceId, cols, i, service, attrs, who, operationInto(clientOp, cols.names[i]!, attrs), factsOfSpan(cols, i));
  into.peer[row] = TOOL_PEER_PREFIX + tool;
  into.peerKind[row] = 'tool';
  into.protocol[row] = 'genai';
  into.target[row] = tool;
  const account = text(attrs, K.CLOUD_ACCOUNT_ID);
  if (account) into.account[row] = account;
}

function serverOnlyCall(into: CallTable, traceId: string, cols: SpanColumns, i: number, service: string, who: ResolvedIdentity): void {
  const attrs = serverAttrs(cols, i);
  const letters = attrs.letters;
  const row = baseCall(into, traceId, cols, i, service, attrs, who, operationInto(serverOp, cols.names[i]!, attrs, letters), factsOfSpan(cols, i));
  into.serverSpanId[row] = into.spanId[row];
  into.service[row] = UNINSTRUMENTED_CALLER;
  into.peer[row] = service;
  into.peerKind[row] = 'service';
  // The resource describes the callee here, not the caller: keep only what the client side says.
  into.source[row] = withClientSide(CALLEE_SIDE, attrs);
  into.version[row] = undefined;
  setTarget(into, row, attrs, letters);
  if (letters & CONDUCT_KEYS) addAuditRecord(into, row, attrs);
}

const CONDUCT_KEYS = letterOf(sc.CONDUCT_AUDIT_RECORD_ID);

/** What a call read from an audit record carries beyond a span: its id, region and the caller's account. */
function addAuditRecord(into: CallTable, row: number, attrs: AttrReader): void {
  const id = text(attrs, K.CONDUCT_AUDIT_RECORD_ID);
  if (!id) return;
  into.auditId[row] = id;
  const region = text(attrs, K.CONDUCT_AUDIT_REGION);
  const account = text(attrs, K.CONDUCT_AUDIT_CALLER_ACCOUNT);
  if (!region && !account) return;
  // Its own source: the one it has may be shared by other calls (see withClientSide).
  const source = { ...into.source[row]! };
  if (region) source.region = region;
  if (account) source.account = account;
  into.source[row] = source;
}

/**
 * A row for a call with the fields every call takes from its span (span i of `cols`, its
 * attributes `attrs`); its peer is UNKNOWN_PEER until the caller names one.
 */
function baseCall(into: CallTable, traceId: string, cols: SpanColumns, i: number, service: string, attrs: AttrReader, who: ResolvedIdentity, op: Operation, facts: ResourceFacts): number {
  const letters = attrs.letters;
  const startMs = finite(cols.starts[i]!);
  const row = into.open(traceId, cols.spanId(i), cols.parentSpanId(i), who.id, who.kind, service, startMs, Math.max(0, finite(cols.ends[i]!) - startMs));
  into.peer[row] = UNKNOWN_PEER;
  into.operation[row] = op.operation;
  into.protocol[row] = op.protocol;
  into.status[row] = statusOf(cols.statuses[i]!);
  into.name[row] = clean(cols.names[i]!, MAX_TEXT_LENGTH);
  into.source[row] = facts.source;
  into.version[row] = facts.version;
  if (op.source === 'path' || op.source === 'name') into.flags[row] = CALL_PATH_OPERATION;
  const httpStatus = httpStatusOf(attrs, letters);
  if (httpStatus !== undefined) into.httpStatus[row] = httpStatus;
  if (letters & ERROR_KEYS) into.errorCode[row] = text(attrs, K.ERROR_TYPE, MAX_ERROR_CODE_LENGTH) || undefined;
  return row;
}

const ERROR_KEYS = letterOf(sc.ERROR_TYPE);
/** Longest `service.version` kept. */
const MAX_VERSION_LENGTH = 128;
/** Longest error class kept. */
const MAX_ERROR_CODE_LENGTH = 128;

/**
 * The peer an unstitched outbound span names, in the order processor/README.md ("Calls") lists. `letters`
 * (`lettersOf(attrs)`, when known) lets it skip families of keys the span has none of.
 */
export function peerOf(attrs: AttrReader, protocol: string, letters = ALL_LETTERS): { peer: string; kind: PeerKind; external: boolean } {
  const out = { peer: UNKNOWN_PEER, peerKind: 'virtual' as PeerKind, external: false };
  peerInto(out, attrs, protocol, letters);
  return { peer: out.peer, kind: out.peerKind, external: out.external };
}

/** peerOf written into a call's fields (no object per call). */
function peerInto(out: Pick<Call, 'peer' | 'peerKind' | 'external'>, attrs: AttrReader, protocol: string, letters: number): void {
  const named = firstOf(attrs, K.PEER_SERVICE_KEYS);
  if (named) return setPeer(out, named, 'virtual', !isPrivate(named));
  const address = firstOf(attrs, K.SERVER_ADDRESS_KEYS);
  if (address) {
    const port = firstOf(attrs, K.SERVER_PORT_KEYS, 8);
    const host = address.includes(':') && !address.startsWith('[') ? `[${address}]` : address;
    const peer = port && /^\d{1,5}$/.test(port) ? withPort(host, port) : address;
    const kind: PeerKind = protocol === 'db' ? 'database' : protocol === 'messaging' ? 'messaging' : protocol === 'http' ? 'http' : 'virtual';
    return setPeer(out, peer, kind, !isPrivate(address.includes(':') ? `[${address}]` : address));
  }
  const db = letters & DB_KEYS ? firstOf(attrs, K.DB_SYSTEM_KEYS) : undefined;
  if (db) {
    const ns = firstOf(attrs, K.DB_NAMESPACE_KEYS);
    return setPeer(out, ns ? `${db}/${ns}` : db, 'database', false);
  }
  const destination = letters & MESSAGING_KEYS ? firstOf(attrs, K.MESSAGING_DESTINATION_KEYS) : undefined;
  if (destination) return setPeer(out, destination, 'messaging', false);
  const urlHost = letters & HTTP_OR_URL_KEYS ? hostOfUrl(firstOf(attrs, K.URL_FULL_KEYS, 2048)) : undefined;
  if (urlHost) return setPeer(out, urlHost, 'http', !isPrivate(urlHost));
  return setPeer(out, UNKNOWN_PEER, 'virtual', false);
}

function setPeer(out: Pick<Call, 'peer' | 'peerKind' | 'external'>, peer: string, kind: PeerKind, external: boolean): void {
  out.peer = peer;
  out.peerKind = kind;
  out.external = external;
}

/** `host[:port]` of an absolute URL, without user info. */
export function hostOfUrl(url: string | undefined): string | undefined {
  if (!url) return undefined;
  const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/(?:[^@/?#]*@)?(\[[^\]/?#]*\]|[^:/?#]*)(:\d{1,5})?/.exec(url);
  const host = m?.[1]?.toLowerCase();
  return host ? clean(host + (m![2] ?? ''), MAX_TEXT_LENGTH) : undefined;
}

/** Attributes naming a call's target resource, strongest first. */
const TARGET_KEY_NAMES: readonly string[] = [sc.AWS_S3_BUCKET, ...sc.DB_COLLECTION_KEYS, ...sc.MESSAGING_DESTINATION_KEYS, sc.GEN_AI_TOOL_NAME, sc.CLOUD_RESOURCE_ID];
const TARGET_KEYS: readonly number[] = TARGET_KEY_NAMES.map(attributeKeyId);

/** The first letter (`letterOf`) of each of TARGET_KEYS. */
const TARGET_LETTERS = TARGET_KEY_NAMES.map(letterOf);
const TARGET_ALL = TARGET_LETTERS.reduce((all, letter) => all | letter, 0);
const ACCOUNT = letterOf(sc.CLOUD_ACCOUNT_ID);

/**
 * Target and account of a call from the first side that names them, then the second (if any);
 * each side's `letters` skip the keys it has none of.
 */
function setTarget(into: CallTable, row: number, first: AttrReader, firstLetters: number, second?: AttrReader, secondLetters = 0): void {
  if ((firstLetters | secondLetters) & TARGET_ALL) {
    for (let i = 0; i < TARGET_KEYS.length; i++) {
      const key = TARGET_KEYS[i]!;
      const letter = TARGET_LETTERS[i]!;
      const value = (firstLetters & letter ? text(first, key) : undefined) ?? (second && secondLetters & letter ? text(second, key) : undefined);
      if (value) {
        into.target[row] = value;
        break;
      }
    }
  }
  const account = (firstLetters & ACCOUNT ? text(first, K.CLOUD_ACCOUNT_ID) : undefined) ?? (second && secondLetters & ACCOUNT ? text(second, K.CLOUD_ACCOUNT_ID) : undefined);
  if (account) into.account[row] = account;
}

/**
 * A source context with what a server span says about its client (see withClientSide), and the
 * last one made from it: the one object the calls of its base and that client share.
 */
interface ClientSides {
  source: SourceContext;
  lastAddress: string | undefined;
  lastAgent: string | undefined;
  lastSource: SourceContext | undefined;
}

/** What a call takes from its span's resource, read once per resource. */
interface ResourceFacts extends ClientSides {
  version: string | undefined;
}

/** The base of server-side-only calls: the resource describes the callee, so nothing of it. */
const CALLEE_SIDE: ClientSides = { source: {}, lastAddress: undefined, lastAgent: undefined, lastSource: undefined };

/**
 * Per resource reader (the decoder makes one per resource of a request, shared by its spans): five
 * attribute reads per call were a third of the attribute reading of derivation (2026-12-06).
 */
const resourceFacts = new WeakMap<AttrReader, ResourceFacts>();

/** The last resource read by factsOfSpan and its facts (a trace's spans come in runs of one resource). */
let lastResource: AttrReader | undefined;
let lastFacts: ResourceFacts | undefined;

/** The facts of the resource of span i of `cols`. */
function factsOfSpan(cols: SpanColumns, i: number): ResourceFacts {
  const resource = cols.resourceAttrs(cols.resourceOf[i]!);
  if (resource === lastResource) return lastFacts!;
  lastResource = resource;
  return (lastFacts = factsOf(resource));
}

function factsOf(resource: AttrReader): ResourceFacts {
  let facts = resourceFacts.get(resource);
  if (facts === undefined) {
    facts = {
      source: sourceOf(text(resource, K.CLOUD_REGION), text(resource, K.CLOUD_ACCOUNT_ID), text(resource, K.HOST_NAME), text(resource, K.K8S_CLUSTER_NAME)),
      version: text(resource, K.SERVICE_VERSION, MAX_VERSION_LENGTH) || undefined,
      lastAddress: undefined,
      lastAgent: undefined,
      lastSource: undefined,
    };
    resourceFacts.set(resource, facts);
  }
  return facts;
}

/**
 * The source context of a resource, made once per resource and shared by the calls of its spans:
 * nothing changes a call's source in place (consumers merge sources into new objects), so a call
 * needs no source object of its own, and the batch encoder finds a shared one at once.
 */
function sourceOf(region: string | undefined, account: string | undefined, host: string | undefined, cluster: string | undefined): SourceContext {
  const source: SourceContext = {};
  if (region) source.region = region;
  if (account) source.account = account;
  if (host) source.host = host;
  if (cluster) source.cluster = cluster;
  return source;
}

/** What a client address says: bare host, network segment, public or private. */
interface ClientAddress {
  host: string;
  network?: string;
  publicAddress: boolean;
}

/** Most addresses and hosts kept classified. */
const MAX_CACHED_ADDRESSES = 4_096;

/** `isPrivateHost` once per peer host: every call to a peer names the same few hosts. */
const isPrivate = memoised(isPrivateHost, MAX_CACHED_ADDRESSES);

/** `host:port` remembered per pair: every call to a peer names the same few (see joinedMemo). */
const withPort = joinedMemo(':', MAX_CACHED_ADDRESSES);

/** A client address classified once per address. */
const classifyClient = memoised((address: string): ClientAddress => {
  const host = bareHost(address);
  const network = networkOf(host);
  const found: ClientAddress = { host, publicAddress: !isPrivateHost(host.includes(':') ? `[${host}]` : host) };
  if (network) found.network = network;
  return found;
}, MAX_CACHED_ADDRESSES);

/**
 * `base.source` with what a server span says about its client (address, network segment, user
 * agent) added: `base.source` itself when it says nothing, else a source shared with the previous
 * call from the same base and client (the server spans of a service mostly name one caller in a
 * row), else a new one. One remembered per base: bounded whatever the senders write.
 */
function withClientSide(base: ClientSides, attrs: AttrReader): SourceContext {
  const address = firstOf(attrs, K.CLIENT_ADDRESS_KEYS, 64);
  const agent = firstOf(attrs, K.USER_AGENT_KEYS, MAX_USER_AGENT_LENGTH);
  if (address === undefined && agent === undefined) return base.source;
  if (base.lastSource !== undefined && base.lastAddress === address && base.lastAgent === agent) return base.lastSource;
  // Its base's fields copied one by one, as sourceOf adds them: a spread copy took the added
  // fields through slow, megamorphic stores (measured: 3x the cost of deriving a call).
  const from = base.source;
  const source = sourceOf(from.region, from.account, from.host, from.cluster);
  if (address) {
    const client = classifyClient(address);
    source.clientAddress = client.host;
    if (client.network) source.network = client.network;
    source.publicAddress = client.publicAddress;
  }
  if (agent) source.userAgent = agent;
  base.lastAddress = address;
  base.lastAgent = agent;
  return (base.lastSource = source);
}

function httpStatusOf(attrs: AttrReader, letters: number): number | undefined {
  if (!(letters & HTTP_KEYS)) return undefined;
  const raw = attrs.get(K.HTTP_RESPONSE_STATUS_CODE) ?? attrs.get(K.HTTP_STATUS_CODE);
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' ? Number(raw) : NaN;
  return Number.isInteger(n) && n >= 100 && n <= 999 ? n : undefined;
}

function statusOf(code: number): Call['status'] {
  return code === StatusCode.ERROR ? 'error' : code === StatusCode.OK ? 'ok' : 'unset';
}

function finite(n: number): number {
  return Number.isFinite(n) ? n : 0;
}

/** The rows of chainsOf's calls (the object API). */
const chainRows = new CallTable();

/**
 * Groups calls by identity; each chain in a stable order: start time, then ancestry (a call whose
 * span descends from another call's span comes after it), then end time, then span id (see
 * `orderCalls`). `parentOf` gives the trace's parent links; without it, those the calls carry.
 * The object form of {@link chainsInto}.
 */
export function chainsOf(calls: readonly Call[], displayNames: Pick<ReadonlyMap<string, string>, 'get'> = NO_NAMES, parentOf?: ParentOf): Chain[] {
  const rows = chainRows;
  rows.clear();
  for (let c = 0; c < calls.length; c++) rows.push(calls[c]!);
  chainsInto(rows, 0, displayNames, parentOf);
  const chains = rows.chainObjects(calls);
  rows.clear();
  return chains;
}

/**
 * chainsOf for the call rows of table `t` from row `from` on (one trace's): its chains added as
 * chain rows, in order of start.
 */
function chainsInto(t: CallTable, from: number, displayNames: Pick<ReadonlyMap<string, string>, 'get'>, parentOf?: ParentOf): void {
  const count = t.n - from;
  const groups = groupByIdentity(t, from, count);
  const parents = parentOf ?? parentsOfRows(t, from, t.n);
  // Each group's rows in order of the calls, at groupAt[g] of `order`, then ordered in place.
  let at = t.reserveOrder(count);
  const rows = t.order;
  for (let g = 0; g < groups; g++) {
    groupAt[g] = groupNext[g] = at;
    at += groupSize[g]!;
  }
  for (let c = 0; c < count; c++) rows[groupNext[groupOf[c]!]!++] = from + c;
  const starts = t.startMs;
  const durations = t.durationMs;
  for (let g = 0; g < groups; g++) {
    const a = groupAt[g]!;
    const b = a + groupSize[g]!;
    orderRows(t, rows, a, b, parents);
    let endMs = starts[rows[a]!]!;
    for (let k = a; k < b; k++) endMs = Math.max(endMs, starts[rows[k]!]! + durations[rows[k]!]!);
    groupEnd[g] = endMs;
    byStart[g] = g;
  }
  if (groups > 1) sortByStart(t, groups);
  for (let k = 0; k < groups; k++) {
    const g = byStart[k]!;
    const first = rows[groupAt[g]!]!;
    const identity = t.identity[first]!;
    t.openChain(t.traceId[first]!, identity, t.identityKind[first]!, displayNames.get(identity) || undefined, starts[first]!, groupEnd[g]!, groupAt[g]!, groupSize[g]!);
  }
}

/**
 * Orders the groups in `byStart` by the start of their first call, stably: by insertion when few
 * (V8's sort allocates its merge state per call; see insertionSort in order.ts).
 */
function sortByStart(t: CallTable, groups: number): void {
  if (groups > INSERTION_SORT_MAX) {
    const sorted = Array.from(byStart.subarray(0, groups)).sort((a, b) => startOf(t, a) - startOf(t, b));
    byStart.set(sorted);
    return;
  }
  for (let i = 1; i < groups; i++) {
    const g = byStart[i]!;
    let j = i - 1;
    for (; j >= 0 && startOf(t, byStart[j]!) - startOf(t, g) > 0; j--) byStart[j + 1] = byStart[j]!;
    byStart[j + 1] = g;
  }
}

/** The start of group g's chain (its first call, once ordered). */
function startOf(t: CallTable, g: number): number {
  return t.startMs[t.order[groupAt[g]!]!]!;
}

/** Identities a trace's calls are grouped by with a scan; a trace with more goes through a Map. */
const SCAN_IDENTITIES = 16;
/** Per call (of the calls being grouped): the index of its identity's group. */
let groupOf = new Int32Array(64);
/**
 * Per group: its number of calls, its identity, where its rows start in the table's `order` (and
 * the next to fill while they are listed), the end of its chain, and the groups in order of start.
 */
let groupSize = new Int32Array(16);
const groupIds: string[] = [];
let groupAt = new Int32Array(16);
let groupNext = new Int32Array(16);
let groupEnd = new Float64Array(16);
let byStart = new Int32Array(16);

/**
 * Numbers the identities of call rows [from, from + count) in the order they first appear (into
 * groupOf / groupSize / groupIds); returns how many. A trace's calls name a few identities: found
 * by comparing with each group's, not through a Map per trace (with the closures and Maps of
 * deriveTable, and lists grown by push, 2-3% of the pipeline thread).
 */
function groupByIdentity(t: CallTable, from: number, count: number): number {
  if (groupOf.length < count) groupOf = new Int32Array(2 * count);
  let groups = 0;
  let index: Map<string, number> | undefined;
  const identities = t.identity;
  for (let c = 0; c < count; c++) {
    const id = identities[from + c]!;
    let g = -1;
    if (index !== undefined) g = index.get(id) ?? -1;
    else {
      for (let h = 0; h < groups; h++) {
        if (groupIds[h] === id) {
          g = h;
          break;
        }
      }
    }
    if (g < 0) {
      g = groups++;
      if (groupSize.length < groups) growGroups(2 * groups);
      groupSize[g] = 0;
      groupIds[g] = id;
      if (index !== undefined) index.set(id, g);
      else if (groups > SCAN_IDENTITIES) {
        index = new Map();
        for (let h = 0; h < groups; h++) index.set(groupIds[h]!, h);
      }
    }
    groupOf[c] = g;
    groupSize[g]++;
  }
  return groups;
}

function growGroups(size: number): void {
  const sizes = new Int32Array(size);
  sizes.set(groupSize);
  groupSize = sizes;
  groupAt = new Int32Array(size);
  groupNext = new Int32Array(size);
  groupEnd = new Float64Array(size);
  byStart = new Int32Array(size);
}
