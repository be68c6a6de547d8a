import { attributeKeyId, ColumnAttrs, SpanKind, StatusCode, type AttrReader, type SpanView } from '@conduct/proto';
import { K } from '../keys.js';
import type { Call, Chain, PeerKind, SourceContext } from '../model.js';
import { serviceOf, type IdentityResolver, type ResolvedIdentity, type TraceSpan } from '../identity/index.js';
import * as sc from '../semconv.js';
import {
  ALL_LETTERS,
  clean,
  DB_KEYS,
  firstOf,
  GEN_AI_KEYS,
  hasPrefix,
  HTTP_KEYS,
  HTTP_OR_URL_KEYS,
  letterOf,
  MAX_TEXT_LENGTH,
  MAX_USER_AGENT_LENGTH,
  MESSAGING_KEYS,
  text,
} from './attrs.js';
import { bareHost, isPrivateHost, networkOf } from './address.js';
import { memoised } from './memo.js';
import { operationOf, type Operation } from './operation.js';
import { orderCalls, parentsFromCalls, type ParentOf } from './order.js';

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

/** An outbound span of a completed trace that found no server span in it, kept for late ones. */
export interface RememberedClient extends TraceSpan {
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

interface Node extends TraceSpan {
  service: string;
  /** `lettersOf(span.attributes)`: the key families the span has any of. */
  letters: number;
  /** A child in another service, whose server side describes this span's call. */
  stitched: boolean;
  /** Its parent is a client span of an earlier completed part of the trace; they made a call. */
  lateStitched?: boolean;
}

/**
 * Turns the spans of one completed trace into calls and per-identity chains (DESIGN.md, "Calls and
 * chains"). Pure: no I/O, no clock. Spans may come in any order; a span id seen twice keeps its
 * first span.
 */
export function deriveTrace(spans: readonly TraceSpan[], resolver: IdentityResolver, options: DeriveOptions = {}): DerivedTrace {
  const nodes = new Map<string, Node>();
  for (const ts of spans) {
    if (!nodes.has(ts.span.spanId)) nodes.set(ts.span.spanId, { span: ts.span, resource: ts.resource, service: serviceOf(ts.resource), letters: ts.span.attributes.letters, stitched: false });
  }
  const acting = resolver.resolveTrace(nodes);
  const identityOf = (node: Node): ResolvedIdentity => acting.get(node.span.spanId) ?? resolver.resourceIdentity(node.resource);

  const calls: Call[] = [];
  const names = new Map<string, string>();
  const add = (call: Call, who: ResolvedIdentity) => {
    calls.push(call);
    if (who.displayName && !names.has(who.id)) names.set(who.id, who.displayName);
  };

  // Stitched calls first: they mark the client spans that must not be emitted again.
  for (const child of nodes.values()) {
    const parent = child.span.parentSpanId ? nodes.get(child.span.parentSpanId) : undefined;
    if (!parent && child.span.parentSpanId && options.takeParent) {
      const client = options.takeParent(child.span.traceId, child.span.parentSpanId, child.service);
      if (client) {
        child.lateStitched = true;
        const who = resolver.spanIdentity(child.span) ?? client.identity;
        const from: Node = { span: client.span, resource: client.resource, service: client.service, letters: client.span.attributes.letters, stitched: true };
        add(stitchedCall(from, child, who), who);
      }
      continue;
    }
    if (!parent || parent === child || parent.service === child.service) continue;
    parent.stitched = true;
    const who = resolver.spanIdentity(child.span) ?? identityOf(parent);
    add(stitchedCall(parent, child, who), who);
  }

  for (const node of nodes.values()) {
    const { span } = node;
    const parent = span.parentSpanId ? nodes.get(span.parentSpanId) : undefined;
    if (node.stitched) {
      // Its call was emitted from the server side; a stitched server span may still be an entry.
    } else if (node.letters & GEN_AI_KEYS && text(span.attributes, K.GEN_AI_OPERATION_NAME) === sc.GEN_AI_EXECUTE_TOOL) {
      const who = identityOf(node);
      add(toolCall(node, who), who);
    } else if (isOutbound(span)) {
      const server = options.takeChild?.(span.traceId, span.spanId, node.service);
      if (server) {
        // Its server span came in an earlier part of the trace.
        const to: Node = { span: server.span, resource: server.resource, service: server.service, letters: server.span.attributes.letters, stitched: false };
        const who = resolver.spanIdentity(server.span) ?? identityOf(node);
        add(stitchedCall(node, to, who), who);
      } else {
        const who = identityOf(node);
        const call = outboundCall(node, who);
        add(call, who);
        // Only calls whose callee may yet send its spans: not databases, not external peers.
        if (options.remember && call.protocol !== 'db' && !call.external) {
          options.remember(span.traceId, span.spanId, { ...detached(node), service: node.service, identity: who });
        }
      }
    }
    if ((span.kind === SpanKind.SERVER || span.kind === SpanKind.CONSUMER) && !parent && !node.lateStitched) {
      const who = resolver.spanIdentity(span);
      if (who) add(serverOnlyCall(node, who), who);
      else if (options.boundary && span.parentSpanId) add(serverOnlyCall(node, BOUNDARY), BOUNDARY);
      // Its caller's span may yet come, in a later part of the trace.
      if (options.rememberServer && span.parentSpanId) {
        options.rememberServer(span.traceId, span.parentSpanId, { ...detached(node), service: node.service, identity: who ?? identityOf(node) });
      }
    }
  }

  const parentOf = (id: string) => nodes.get(id)?.span.parentSpanId || undefined;
  return { calls, chains: chainsOf(calls, names, parentOf) };
}

/**
 * A span and its resource as held after its trace: a span read from a request's columns is copied
 * out, so that remembering it does not keep the whole request in memory.
 */
function detached(node: Node): TraceSpan {
  const attrs = node.span.attributes;
  if (!(attrs instanceof ColumnAttrs)) return { span: node.span, resource: node.resource };
  const copy = attrs.cols.copySpan(attrs.owner);
  return { span: copy.span(0), resource: copy.resourceAttrs(0) };
}

function isOutbound(span: SpanView): boolean {
  if (span.kind === SpanKind.CLIENT || span.kind === SpanKind.PRODUCER) return true;
  return span.kind === SpanKind.UNSPECIFIED && hasPrefix(span.attributes);
}

function stitchedCall(client: Node, server: Node, who: ResolvedIdentity): Call {
  const c = client.span;
  const s = server.span;
  const op = pickOperation(operationOf(c.name, c.attributes, client.letters), operationOf(s.name, s.attributes, server.letters));
  const call = baseCall(client, who, op);
  call.serverSpanId = s.spanId;
  call.peer = server.service;
  call.peerKind = 'service';
  call.status = statusOf(c.statusCode === StatusCode.ERROR || s.statusCode === StatusCode.ERROR ? StatusCode.ERROR : Math.max(c.statusCode, s.statusCode));
  const httpStatus = httpStatusOf(s.attributes, server.letters) ?? httpStatusOf(c.attributes, client.letters);
  if (httpStatus !== undefined) call.httpStatus = httpStatus;
  else delete call.httpStatus;
  setTarget(call, c.attributes, client.letters, s.attributes, server.letters);
  addClientSide(call.source, s.attributes);
  return call;
}

/** Strength of an operation source: a stronger one describes a call better. */
const SOURCE_RANK = { route: 3, semantic: 2, path: 1, name: 0 } as const;

/** The server side's route wins; else whichever side has the stronger description. */
function pickOperation(client: Operation, server: Operation): Operation {
  if (server.source === 'route') return server;
  if (SOURCE_RANK[client.source] > SOURCE_RANK[server.source]) return client;
  const protocol = server.protocol !== 'internal' ? server.protocol : client.protocol;
  return { ...server, protocol };
}

function outboundCall(node: Node, who: ResolvedIdentity): Call {
  const attrs = node.span.attributes;
  const op = operationOf(node.span.name, attrs, node.letters);
  const call = baseCall(node, who, op);
  const peer = peerOf(attrs, op.protocol, node.letters);
  call.peer = peer.peer;
  call.peerKind = peer.kind;
  call.external = peer.external;
  setTarget(call, attrs, node.letters);
  return call;
}

function toolCall(node: Node, who: ResolvedIdentity): Call {
  const attrs = node.span.attributes;
  const tool = text(attrs, K.GEN_AI_TOOL_NAME) ?? UNKNOWN_PEER;
  const call = baseCall(node, who, operationOf(node.span.name, attrs));
  call.peer = TOOL_PEER_PREFIX + tool;
  call.peerKind = 'tool';
  call.protocol = 'genai';
  call.target = tool;
  const account = text(attrs, K.CLOUD_ACCOUNT_ID);
  if (account) call.account = account;
  return call;
}

function serverOnlyCall(node: Node, who: ResolvedIdentity): Call {
  const attrs = node.span.attributes;
  const call = baseCall(node, who, operationOf(node.span.name, attrs, node.letters));
  call.serverSpanId = node.span.spanId;
  call.service = UNINSTRUMENTED_CALLER;
  call.peer = node.service;
  call.peerKind = 'service';
  // The resource describes the callee here, not the caller: keep only what the client side says.
  call.source = {};
  delete call.version;
  addClientSide(call.source, attrs);
  setTarget(call, attrs, node.letters);
  if (node.letters & CONDUCT_KEYS) addAuditRecord(call, attrs);
  return call;
}

const CONDUCT_KEYS = letterOf(sc.CONDUCT_AUDIT_RECORD_ID);

/** What a call read from an audit record carries beyond a span: its id, region and the caller's account. */
function addAuditRecord(call: Call, attrs: AttrReader): void {
  const id = text(attrs, K.CONDUCT_AUDIT_RECORD_ID);
  if (!id) return;
  call.auditId = id;
  const region = text(attrs, K.CONDUCT_AUDIT_REGION);
  if (region) call.source.region = region;
  const account = text(attrs, K.CONDUCT_AUDIT_CALLER_ACCOUNT);
  if (account) call.source.account = account;
}

function baseCall(node: Node, who: ResolvedIdentity, op: Operation): Call {
  const { span } = node;
  const call: Call = {
    traceId: span.traceId,
    spanId: span.spanId,
    parentSpanId: span.parentSpanId,
    identity: who.id,
    identityKind: who.kind,
    service: node.service,
    peer: UNKNOWN_PEER,
    peerKind: 'virtual',
    external: false,
    operation: op.operation,
    protocol: op.protocol,
    startMs: finite(span.startMs),
    durationMs: Math.max(0, finite(span.endMs) - finite(span.startMs)),
    status: statusOf(span.statusCode),
    name: clean(span.name, MAX_TEXT_LENGTH),
    source: sourceOf(node.resource),
  };
  const version = text(node.resource, K.SERVICE_VERSION, MAX_VERSION_LENGTH);
  if (version) call.version = version;
  if (op.source === 'path' || op.source === 'name') call.pathOperation = true;
  const httpStatus = httpStatusOf(span.attributes, node.letters);
  if (httpStatus !== undefined) call.httpStatus = httpStatus;
  const errorCode = node.letters & ERROR_KEYS ? text(span.attributes, K.ERROR_TYPE, MAX_ERROR_CODE_LENGTH) : undefined;
  if (errorCode) call.errorCode = errorCode;
  return call;
}

const ERROR_KEYS = letterOf(sc.ERROR_TYPE);
/** Longest `service.version` kept. */
const MAX_VERSION_LENGTH = 128;
/** Longest error class kept. */
const MAX_ERROR_CODE_LENGTH = 128;

/**
 * The peer an unstitched outbound span names, in the order DESIGN.md lists. `letters`
 * (`lettersOf(attrs)`, when known) lets it skip families of keys the span has none of.
 */
export function peerOf(attrs: AttrReader, protocol: string, letters = ALL_LETTERS): { peer: string; kind: PeerKind; external: boolean } {
  const named = firstOf(attrs, K.PEER_SERVICE_KEYS);
  if (named) return { peer: named, kind: 'virtual', external: !isPrivate(named) };
  const address = firstOf(attrs, K.SERVER_ADDRESS_KEYS);
  if (address) {
    const port = firstOf(attrs, K.SERVER_PORT_KEYS, 8);
    const host = address.includes(':') && !address.startsWith('[') ? `[${address}]` : address;
    const peer = port && /^\d{1,5}$/.test(port) ? `${host}:${port}` : address;
    const kind: PeerKind = protocol === 'db' ? 'database' : protocol === 'messaging' ? 'messaging' : protocol === 'http' ? 'http' : 'virtual';
    return { peer, kind, external: !isPrivate(address.includes(':') ? `[${address}]` : address) };
  }
  const db = letters & DB_KEYS ? firstOf(attrs, K.DB_SYSTEM_KEYS) : undefined;
  if (db) {
    const ns = firstOf(attrs, K.DB_NAMESPACE_KEYS);
    return { peer: ns ? `${db}/${ns}` : db, kind: 'database', external: false };
  }
  const destination = letters & MESSAGING_KEYS ? firstOf(attrs, K.MESSAGING_DESTINATION_KEYS) : undefined;
  if (destination) return { peer: destination, kind: 'messaging', external: false };
  const urlHost = letters & HTTP_OR_URL_KEYS ? hostOfUrl(firstOf(attrs, K.URL_FULL_KEYS, 2048)) : undefined;
  if (urlHost) return { peer: urlHost, kind: 'http', external: !isPrivate(urlHost) };
  return { peer: UNKNOWN_PEER, kind: 'virtual', external: false };
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
function setTarget(call: Call, first: AttrReader, firstLetters: number, second?: AttrReader, secondLetters = 0): void {
  if ((firstLetters | secondLetters) & TARGET_ALL) {
    for (let i = 0; i < TARGET_KEYS.length; i++) {
      const key = TARGET_KEYS[i]!;
      const letter = TARGET_LETTERS[i]!;
      const value = (firstLetters & letter ? text(first, key) : undefined) ?? (second && secondLetters & letter ? text(second, key) : undefined);
      if (value) {
        call.target = value;
        break;
      }
    }
  }
  const account = (firstLetters & ACCOUNT ? text(first, K.CLOUD_ACCOUNT_ID) : undefined) ?? (second && secondLetters & ACCOUNT ? text(second, K.CLOUD_ACCOUNT_ID) : undefined);
  if (account) call.account = account;
}

function sourceOf(resource: AttrReader): SourceContext {
  const source: SourceContext = {};
  const region = text(resource, K.CLOUD_REGION);
  if (region) source.region = region;
  const account = text(resource, K.CLOUD_ACCOUNT_ID);
  if (account) source.account = account;
  const host = text(resource, K.HOST_NAME);
  if (host) source.host = host;
  const cluster = text(resource, K.K8S_CLUSTER_NAME);
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

/** A client address classified once per address. */
const classifyClient = memoised((address: string): ClientAddress => {
  const host = bareHost(address);
  const network = networkOf(host);
  const found: ClientAddress = { host, publicAddress: !isPrivateHost(host.includes(':') ? `[${host}]` : host) };
  if (network) found.network = network;
  return found;
}, MAX_CACHED_ADDRESSES);

/** Adds what a server span says about its client: address, network segment, user agent. */
function addClientSide(source: SourceContext, attrs: AttrReader): void {
  const address = firstOf(attrs, K.CLIENT_ADDRESS_KEYS, 64);
  if (address) {
    const client = classifyClient(address);
    source.clientAddress = client.host;
    if (client.network) source.network = client.network;
    source.publicAddress = client.publicAddress;
  }
  const agent = firstOf(attrs, K.USER_AGENT_KEYS, MAX_USER_AGENT_LENGTH);
  if (agent) source.userAgent = agent;
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

/**
 * Groups calls by identity; each chain in a stable order: start time, then ancestry (a call whose
 * span descends from another call's span comes after it), then end time, then span id (see
 * `orderCalls`). `parentOf` gives the trace's parent links; without it, those the calls carry.
 */
export function chainsOf(
  calls: readonly Call[],
  displayNames: ReadonlyMap<string, string> = new Map(),
  parentOf: ParentOf = parentsFromCalls(calls),
): Chain[] {
  const byIdentity = new Map<string, Call[]>();
  for (const call of calls) {
    let list = byIdentity.get(call.identity);
    if (!list) byIdentity.set(call.identity, (list = []));
    list.push(call);
  }
  const chains: Chain[] = [];
  for (const [identity, list] of byIdentity) {
    orderCalls(list, parentOf);
    const first = list[0]!;
    const chain: Chain = {
      traceId: first.traceId,
      identity,
      identityKind: first.identityKind,
      startMs: first.startMs,
      endMs: list.reduce((end, c) => Math.max(end, c.startMs + c.durationMs), first.startMs),
      calls: list,
    };
    const name = displayNames.get(identity);
    if (name) chain.displayName = name;
    chains.push(chain);
  }
  chains.sort((a, b) => a.startMs - b.startMs);
  return chains;
}
