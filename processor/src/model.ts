/**
 * The seam between the processor and whatever consumes its output (the backend, a test sink).
 * Everything here is plain, JSON-serialisable data, so that the two sides can later run in
 * different processes.
 */

/** Kinds of identity named by the default rules; custom rules may name others. */
export type IdentityKind = 'agent' | 'principal' | 'certificate' | 'workload' | (string & {});

/** Where a call came from. Empty fields are omitted. */
export interface SourceContext {
  /** Caller's `cloud.region`. */
  region?: string;
  /** Caller's own account: the resource's `cloud.account.id`. */
  account?: string;
  /** Caller's `host.name` (churns; shown, not learned). */
  host?: string;
  /** Caller's `k8s.cluster.name`. */
  cluster?: string;
  /** For server-side-only calls: the `client.address` network segment (/24 for IPv4, /48 for IPv6). */
  network?: string;
  /** For server-side-only calls: the `client.address` itself. */
  clientAddress?: string;
  /** For server-side-only calls: `user_agent.original`. */
  userAgent?: string;
  /** True when clientAddress is outside private address space. */
  publicAddress?: boolean;
}

export type PeerKind = 'service' | 'virtual' | 'database' | 'messaging' | 'http' | 'tool';

/** One edge: an identity, through a caller service, performing an operation on a peer. */
export interface Call {
  traceId: string;
  /** The span that represents the call: the client span when there is one, else the server span. */
  spanId: string;
  /** The server span when the call was stitched to one, or when only the server side was seen. */
  serverSpanId?: string;
  /** Parent of spanId, '' for a root. */
  parentSpanId: string;
  /** Identity id, e.g. `agent:support-triage`, `spiffe://prod/ns/ci/sa/deployer`, `svc:payments/ledger`. */
  identity: string;
  identityKind: IdentityKind;
  /** The caller service, `service.namespace/service.name` or just `service.name`. */
  service: string;
  /** The caller's `service.version` (its build), when its resource says; absent on server-side-only calls. */
  version?: string;
  /** The callee: a service name, a virtual peer (`host:port`, `postgresql/orders`, ...). */
  peer: string;
  peerKind: PeerKind;
  /** True when the peer is outside private address space. */
  external: boolean;
  /** Templated operation: `GET /users/{id}`, `ListBuckets`, `SELECT orders`, `execute_tool search`. */
  operation: string;
  /**
   * True when the operation was read from a raw URL path or span name, not from `http.route` or a
   * semantic attribute: learned path parameters may still replace its segments (the backend's
   * engine applies them before storing). Not stored.
   */
  pathOperation?: boolean;
  /** Target resource: bucket, table/collection, destination, tool. */
  target?: string;
  /** Target account: the span's own `cloud.account.id`. */
  account?: string;
  /** `http`, `grpc`, `rpc`, `db`, `messaging`, `genai` or `internal`. */
  protocol: string;
  /** Event time of the call start, ms since the Unix epoch. */
  startMs: number;
  durationMs: number;
  status: 'ok' | 'error' | 'unset';
  /** HTTP response status code when known. */
  httpStatus?: number;
  /** The span name as sent (untrusted text). */
  name: string;
  source: SourceContext;
  /** The class of error the call ended with (`error.type`; a CloudTrail `errorCode`). */
  errorCode?: string;
  /**
   * The id of the audit record the call was read from (CloudTrail `eventID`, Kubernetes
   * `auditID`), so an analyst can find the original record; absent for calls from spans.
   */
  auditId?: string;
}

/** The ordered calls of one identity in one trace. */
export interface Chain {
  traceId: string;
  identity: string;
  identityKind: IdentityKind;
  /** Human-friendly name when the trace gives one (`gen_ai.agent.name`). */
  displayName?: string;
  startMs: number;
  endMs: number;
  /**
   * Wall-clock ms since the epoch at which conduct received the chain (its trace completed and
   * was stored), set by the backend when it stores the chain; the other times are event time.
   * Absent on chains stored by versions that did not record it.
   */
  receivedMs?: number;
  /** Ordered by startMs, then ancestry (a call made under another call comes after it), then end time, then span id. */
  calls: Call[];
}

/** One completed trace, whether or not it yielded calls (so the trace view knows every trace). */
export interface TraceSummary {
  traceId: string;
  startMs: number;
  endMs: number;
  spans: number;
  /** Services seen in the trace (bounded). */
  services: string[];
  /**
   * Set when this is a later part of a trace completed before (see the stitcher's LatePart):
   * `joins` (merge it into the stored trace), `maybe` (look the trace up in the store first) or
   * `fragment` (its trace completed longer ago than `stitching.lateTraceWindow`: stored on its own).
   */
  late?: 'joins' | 'maybe' | 'fragment';
}

/** What the processor hands on when traces complete. */
export interface ChainBatch {
  chains: Chain[];
  /** Every trace completed into this batch (optional for producers that only have chains). */
  traceSummaries?: TraceSummary[];
  /**
   * The ids of the batch's traces, in the order of its summaries, where only those were read back
   * (the pipeline thread's batches as its extension sees them: `traceSummaries` is not set there).
   */
  traceIds?: readonly string[];
  /** Number of traces completed into this batch. */
  traces: number;
  /** Number of spans those traces held. */
  spans: number;
  /**
   * Trace ids of this batch that a journal fed again after a restart (set by the backend's
   * journal, never by the pipeline): their chains may be stored already, in part or whole.
   */
  replayed?: readonly string[];
  /**
   * When conduct first received each replayed trace (wall clock, ms since the epoch, by trace id;
   * set by the backend's journal from the requests it replays): their chains keep that time as
   * `receivedMs` instead of the time of the replay.
   */
  replayedReceivedMs?: ReadonlyMap<string, number>;
  /**
   * The tagged requests (see TraceIngest.acceptRaw) whose spans this batch's traces hold, set by a
   * pipeline that tags: a journal settles them without looking their traces up by id.
   */
  requests?: BatchRequests;
}

/** Which tagged requests a batch's traces came from (ChainBatch.requests). */
export interface BatchRequests {
  /**
   * Pairs (request tag, position of the trace in the ids that request's `onAccepted` listed), one
   * per request and trace of the batch that holds spans of both.
   */
  pairs: Int32Array;
  /**
   * False when spans were dropped as resent copies when the batch's traces completed: a request
   * whose every span of a trace was a copy may then be missing from `pairs` (look it up by id).
   */
  exact: boolean;
}

/**
 * Receives completed chains. After `consume` resolves, the batch belongs to the consumer; the
 * processor does not touch it again. A rejection is reported and counted by the caller.
 */
export interface ChainConsumer {
  consume(batch: ChainBatch): Promise<void>;
  /**
   * Optional: consumes batches that waited together, in order, with the outcome `consume` would
   * give each one after the other, but may store them in one write (the backend's engine does).
   * Resolves with each batch's failure, `undefined` for a batch consumed; never rejects. Producers
   * call it instead of `consume` for two or more batches at a time (see MAX_BATCHES_PER_WRITE).
   */
  consumeMany?(batches: readonly ChainBatch[]): Promise<Array<{ err: unknown } | undefined>>;
}

/** A rule that names the acting identity of a span. */
export interface IdentityRule {
  /** Read the attribute from the span's own attributes or from its resource. */
  from: 'span' | 'resource';
  /**
   * Attribute key to read. Several keys (resource rules) are joined with '/' in the given order,
   * skipping absent ones; the rule matches when the last key is present.
   */
  attribute: string | string[];
  /** Optional regular expression; the first non-empty capture group (or the whole match) is the id. */
  pattern?: string;
  /** Kind of identity this rule names. */
  kind: IdentityKind;
  /** Prepended to the extracted value to form the identity id, e.g. `agent:` or `svc:`. */
  prefix?: string;
  /** Span or resource attribute holding a display name, e.g. `gen_ai.agent.name`. */
  displayNameAttribute?: string;
}

/** Minimal logger interface (pino-compatible). Components get one passed in. */
export interface Logger {
  debug(obj: object | string, msg?: string): void;
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
}

export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};

/** What a receiver hears back when it hands a decoded request on. */
export type AcceptOutcome =
  | { ok: true }
  /** Not accepted, try again later: answered with HTTP 429/503 + Retry-After, gRPC UNAVAILABLE + RetryInfo. */
  | { ok: false; reason: string; retryAfterMs: number };

/** The body of an OTLP export request as received (after gzip): what was decoded. */
export interface RawRequest {
  format: 'protobuf' | 'json';
  body: Uint8Array;
  /**
   * The body's whole ArrayBuffer belongs to this request (nothing else reads the bytes around the
   * body, now or later): an ingest on another thread may move it there instead of copying the body,
   * and the caller releases it once the ingest has settled (no ingest reads the bytes after that).
   * Absent, only a body that is its whole buffer is moved, and the caller leaves it alone.
   */
  ownsBuffer?: boolean;
  /**
   * Set by an ingest that moved the bytes away and gave them back (TraceIngest.acceptRaw): `body`
   * is then a view into a buffer of its own, made for this request, that no ingest reads once the
   * promise has settled. The caller releases it when done (`releaseBuffer`, release.ts), so that
   * V8 stops counting its bytes before a full collection finds it dead.
   */
  returned?: boolean;
}

/** What became of a body handed to `TraceIngest.acceptRaw`. */
export type RawAcceptResult =
  /** Not a valid OTLP request (the decoder's message). */
  | { kind: 'invalid'; message: string }
  /** Refused before it was decoded (the span count is unknown). */
  | { kind: 'refused'; outcome: Extract<AcceptOutcome, { ok: false }> }
  /** Decoded, then accepted or refused as `outcome` says. */
  | { kind: 'decoded'; outcome: AcceptOutcome; spanCount: number; rejectedSpans: number; rejectMessage: string };

/**
 * Where receivers hand decoded requests. When the returned promise resolves with `{ok: true}` the
 * spans are accepted (and, once journaling exists, durable): the receiver may acknowledge them.
 */
export interface TraceIngest {
  /**
   * `raw` (optional): the request body `data` was decoded from. An ingest may keep these bytes
   * rather than `data` (the journal does: cheaper than serialising the decoded form). The body is
   * the caller's: it must not be changed, and is only read until the returned promise settles.
   */
  accept(data: import('@conduct/proto').TracesRequestData, raw?: RawRequest): Promise<AcceptOutcome>;
  /**
   * Optional: decodes the body itself (elsewhere, e.g. on another thread) and accepts it, so the
   * receiver does not decode. `limits` are the receiver's (without `keep`: the ingest applies its
   * own). `onAccepted` is called synchronously once the spans are in, before the promise settles
   * and before any of their traces can be handed on, with the trace ids the request touched (each
   * once: as texts, or as bytes from an ingest that decodes them so, TraceIdBytes) and, from an
   * ingest that tags requests, the request's tag: the batches that complete its traces then name
   * it by that tag in ChainBatch.requests.
   * The ingest may move the bytes elsewhere meanwhile (`raw.body`'s buffer detached, as a transfer
   * to a thread does): `raw.body` holds them again when `onAccepted` runs and when the promise
   * settles (not after an ingest failure). Callers read the body through `raw`, not a copy of it.
   * Receivers prefer this over `accept` when they do not need the decoded request themselves.
   */
  acceptRaw?(
    raw: RawRequest,
    limits: import('@conduct/proto').DecodeLimits,
    onAccepted?: (traceIds: import('./trace-ids.js').AcceptedTraceIds, spans: number, tag?: number) => void,
  ): Promise<RawAcceptResult>;
  /**
   * The attributes this ingest reads (optional). Receivers decode only these (they pass it to the
   * decoders as `DecodeLimits.keep`); absent, every attribute is decoded.
   */
  readonly keep?: import('@conduct/proto').AttributeKeep;
}
