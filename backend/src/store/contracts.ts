/**
 * What conduct needs from a storage backend, one narrow interface per concern (the shape of
 * Jaeger v2's storage API). Every backend lives in its own folder, `store/<backend>/`, and is the
 * only place that writes SQL or holds a database handle; the rest of the backend sees these
 * interfaces only. `runStoreConformance` (conformance.ts) holds every backend to them.
 *
 * Methods a network database needs are async. A backend may answer them synchronously underneath
 * (SQLite does): callers await them per batch or per request, never per call or span.
 *
 * Times are event time in ms since the epoch unless a name says otherwise; `Chain.receivedMs` is
 * wall-clock time (when conduct received the chain), stored and read back as given, absent when
 * the chain had none.
 */
import type { Chain, LearnedPathParameter, Logger, PathParameterStore, TraceSummary } from '@conduct/processor';
import type { Alert } from '../alerts/model.js';

// ---------------------------------------------------------------------------------------------
// (a) Chains and trace summaries

/** What one `writeChains` call stored. */
export interface WriteResult {
  chains: number;
  calls: number;
  /** Chains refused because their trace id is not 32 hex digits (counted, not stored). */
  rejected: number;
}

export interface ChainWriter {
  /**
   * Stores the chains, folds them into identities and observed edges, and records the completed
   * traces' summaries, all in one transaction. Resolved: every accepted chain, its identity and
   * edge counts and every summary are durable together (readable by every reader of this
   * backend). Rejected: nothing of the batch is stored. Chains `accepts` refuses are counted in
   * `rejected` and skipped; the rest of the batch is stored.
   */
  writeChains(chains: readonly Chain[], traces?: readonly TraceSummary[]): Promise<WriteResult>;
  /**
   * Replaces every stored chain of one trace with `chains`: a later part of the trace merged
   * into what was stored of it (`chainReader.traceChains` reads it, span ids included). The old
   * chains' calls, chains and edge counts are taken off their identities and edges and the new
   * ones added, so that each call is counted once; an identity or edge left with no calls is
   * deleted; first and last seen times are kept. Chains of another trace, or that `accepts`
   * refuses, are counted in `rejected` and not stored. The trace's summaries are not touched
   * (the part's own summary is written with `writeChains`). Resolved: all of it is durable
   * together; rejected: nothing changed.
   */
  replaceTraceChains(traceId: string, chains: readonly Chain[]): Promise<WriteResult>;
  /**
   * Stores one unit of a batch and the detection checkpoint of its analysis in one transaction:
   * the chains and summaries as `writeChains` stores them, each replaced trace as
   * `replaceTraceChains` replaces it, then the checkpoint as `DetectionStateWriter.checkpoint`
   * applies it. Resolved: all of it is durable together; rejected: none of it is. A unit sent
   * again after a commit whose answer was lost (a server's connection dropped) is not applied
   * twice. This is what keeps processing effectively once: the chains stored and the baselines
   * learned from them never advance apart (README, "Guarantees and limits").
   */
  commitBatch(unit: BatchUnit): Promise<WriteResult>;
  /** Whether `writeChains` stores this chain (trace id of 32 hex digits, not all zero; calls a list). Pure, no I/O. */
  accepts(chain: Chain): boolean;
}

/** What `ChainWriter.commitBatch` stores in one transaction; every field may be absent. */
export interface BatchUnit {
  chains?: readonly Chain[];
  traces?: readonly TraceSummary[];
  /** Traces whose stored chains are replaced whole (later parts merged into them), in order. */
  replaced?: ReadonlyArray<{ traceId: string; chains: readonly Chain[] }>;
  checkpoint?: DetectionCheckpoint;
  /**
   * Cluster stage 1: items handed to their partitions' owners, committed with the chains they
   * carry (a crash cannot leave chains stored but never handed off). Only a backend with a
   * cluster store takes it; the others refuse the unit.
   */
  handOff?: { items: readonly HandOffItem[]; fromInstance: string };
}

/** Which of an identity's chains to read. */
export interface ChainQuery {
  /** Most chains returned (at least 1). */
  limit: number;
  /** Only chains that ended at or after this. */
  sinceMs?: number;
  /** Only chains that ended before this. */
  untilMs?: number;
}

export interface ChainReader {
  /** Every chain of a trace in start-time order (ties: write order); `traceId` is 32 hex digits in either case; [] when unknown or malformed. */
  traceChains(traceId: string): Promise<Chain[]>;
  /** An identity's chains, newest (by end time) first, ties newest written first. */
  recentChains(identity: string, query: ChainQuery): Promise<Chain[]>;
  /** What is known of a completed trace (spans, services, times, merged over late parts); undefined when unknown. */
  traceSummary(traceId: string): Promise<TraceSummary | undefined>;
  /**
   * traceSummary of each trace id, in the order given: the traces of a batch's later parts, asked
   * together (one read on PostgreSQL, where a read a trace was a round trip each).
   */
  traceSummaries(traceIds: readonly string[]): Promise<Array<TraceSummary | undefined>>;
  /** traceChains of each trace id, in the order given (see traceSummaries). */
  chainsOfTraces(traceIds: readonly string[]): Promise<Chain[][]>;
  /** Newest chain end time ever stored, 0 when empty. */
  newestEventMs(): Promise<number>;
  /**
   * Visits the id (32 lower-case hex digits) of every trace stored since `sinceMs` (wall clock:
   * when its chains were received), newest first, and maybe a few stored a little earlier: an
   * engine that starts on a store seeds its memory of recently stored traces with them, so that a
   * later part of a trace stored before a restart is still recognised (engine/recent-traces.ts).
   * Resolves true once every such trace was visited; false when the backend cannot tell which they
   * are (rows without a received time, or more than `maxIds` of them): the caller must then assume
   * any trace may be stored. Reads in steps, yielding between them.
   */
  recentTraceIds(sinceMs: number, maxIds: number, visit: (traceId: string) => void): Promise<boolean>;
}

/** What one retention step deleted. */
export interface PruneResult {
  chains: number;
  traces: number;
  /** Identities last seen before the time, deleted (absent when none). */
  identities?: number;
  /** Observed edges last seen before the time, deleted (absent when none). */
  edges?: number;
  /** Numbered texts no stored chain refers to any more, deleted (absent when none). */
  texts?: number;
  /** Chains held out of learning by an alert that started before the time, deleted (absent when none). */
  held?: number;
  /** Set when the backend has more to do than the counts show (a sweep of texts under way): call again. */
  more?: boolean;
}

export interface ChainRetention {
  /**
   * One bounded retention step: deletes at most `maxRows` chains and at most `maxRows` trace
   * summaries that ended before `beforeMs`, oldest stored first, so a step never scans the whole
   * table; at most `maxRows` identities and at most `maxRows` observed edges last seen before
   * `beforeMs` (nothing of them is left to keep); at most `maxRows` held chains (kept out of
   * learning by an alert) that started before `beforeMs`, oldest first, whatever their alert's
   * status (an incident counted on for days holds every repeat's chain); and (where the backend numbers texts) it
   * advances freeing the texts no chain refers to any more, reading or deleting at most about
   * `maxRows` rows for it. Keep calling while it deletes something or says `more`. Resolved: the
   * counted rows are gone for every reader; identities and edges seen since keep their counts
   * (they are aggregates, not recounted from the chains left).
   */
  pruneStep(beforeMs: number, maxRows: number): Promise<PruneResult>;
}

// ---------------------------------------------------------------------------------------------
// (b) Identities and observed edges

/** One identity as stored: counters and event-time bounds. */
export interface IdentityRecord {
  id: string;
  kind: string;
  displayName?: string;
  firstSeenMs: number;
  lastSeenMs: number;
  calls: number;
  chains: number;
  /** Distinct peers it has called. */
  peers: number;
}

/** Aggregate of one identity's calls through one caller service to one peer with one operation. */
export interface EdgeRecord {
  identity: string;
  service: string;
  peer: string;
  peerKind: string;
  external: boolean;
  operation: string;
  count: number;
  firstSeenMs: number;
  lastSeenMs: number;
}

export interface IdentityReader {
  /** Identities by most recent activity (last seen, then id), at most `limit`. */
  listIdentities(limit: number): Promise<IdentityRecord[]>;
  getIdentity(id: string): Promise<IdentityRecord | undefined>;
  /** Every observed edge of an identity, most used first (then service, peer, operation). */
  identityEdges(id: string): Promise<EdgeRecord[]>;
  /** How many identities and edges are stored. */
  counts(): Promise<{ identities: number; edges: number }>;
}

// ---------------------------------------------------------------------------------------------
// (c) Detection state: baselines, alerts, held chains, suppressions

/**
 * The group a baseline belongs to: the partition of its identity in a cluster, 0 on one
 * instance. Baselines are loaded by group so an instance can take over a partition.
 */
export type BaselineGroup = number;

/** One identity's learned baseline without its entries; `rate` and `recentSources` are opaque JSON values. */
export interface BaselineRecord {
  identity: string;
  kind: string;
  displayName?: string;
  group: BaselineGroup;
  firstMs: number;
  lastMs: number;
  calls: number;
  enforcingSinceMs?: number;
  compromised: boolean;
  dropped: number;
  lastSweepMs: number;
  rate: unknown;
  recentSources: unknown;
}

/** One learned key of a baseline (an operation, a peer, a transition...). */
export interface BaselineEntryRecord {
  kind: string;
  key: string;
  count: number;
  firstMs: number;
  lastMs: number;
}

/** What changed in one baseline since its last checkpoint: the record whole, entries by key. */
export interface BaselineDelta {
  baseline: BaselineRecord;
  /** Entries written whole (inserted or replaced). */
  entries: readonly BaselineEntryRecord[];
  /** Entries forgotten. */
  removed: ReadonlyArray<{ kind: string; key: string }>;
}

/** Which baselines to load: the given groups, or all when absent. */
export interface BaselineScope {
  groups?: readonly BaselineGroup[];
}

/** Receives loaded baselines: every `baseline` before any `entry` of it. */
export interface BaselineVisitor {
  baseline(record: BaselineRecord): void;
  entry(identity: string, entry: BaselineEntryRecord): void;
}

/** An alert with the key its repeats are found by (identity, detector and finding keys). */
export interface AlertRecord {
  alert: Alert;
  dedupKey: string;
  /**
   * The alert's delivery sequence is raised to at least this (a copy between backends carries
   * it, so that delivery ids never repeat); absent: kept as it is (0 for a new alert).
   */
  deliverySeq?: number;
}

/** Which alerts to list. */
export interface AlertListFilter {
  identity?: string;
  /** Alerts holding a finding of this detector (any of `detectors`; `detector` for alerts without them). */
  detector?: string;
  status?: string;
  /** Only alerts last seen at or after this. */
  sinceMs?: number;
  /** Only alerts first seen before this. */
  untilMs?: number;
  /** Only alerts raised on this trace (32 hex digits, either case). */
  traceId?: string;
  /** Only alerts of these severities. */
  severities?: readonly string[];
  /** Free text, case-insensitive (ASCII), in the alert's id, identity, detector, trace id, title, explanation or findings. */
  text?: string;
  /** Newest last seen first (default), highest score first, or most severe first (then score); ties newest first. */
  sort?: 'time' | 'score' | 'severity';
  /** Most alerts returned (the caller bounds it). */
  limit: number;
}

/** A chain kept out of its identity's baseline until an operator's verdict on the alert it raised. */
export interface HeldChain {
  identity: string;
  traceId: string;
  alertId: string;
  chain: Chain;
}

/** A finding key an operator marked expected: it raises no alert again for that identity and detector. */
export interface SuppressionRecord {
  identity: string;
  detector: string;
  key: string;
  alertId: string;
}

/**
 * Writes that must commit together: the baseline deltas learned from a batch, the alerts it
 * raised or repeated, the chains it held out, and what an operator's verdict released or
 * suppressed. Every field may be empty.
 */
export interface DetectionCheckpoint {
  baselines?: readonly BaselineDelta[];
  /** Inserted, or replaced whole by id (a repeat, a verdict), dedup key included. */
  alerts?: readonly AlertRecord[];
  /** Inserted or replaced by (identity, trace id, alert id). */
  held?: readonly HeldChain[];
  /** Held chains released into the baseline: every row of that identity and trace is deleted. */
  released?: ReadonlyArray<{ identity: string; traceId: string }>;
  /** Added; an existing (identity, detector, key) is kept as it was. */
  suppressions?: readonly SuppressionRecord[];
  /** Alert events enqueued for delivery (after `alerts`, so an alert raised here can be enqueued here). */
  outbox?: readonly OutboxEvent[];
}

export interface DetectionStateReader {
  /** Streams the baselines of `scope` (all when absent) into the visitor. */
  loadBaselines(visitor: BaselineVisitor, scope?: BaselineScope): Promise<void>;
  /** Every suppression, or those of identities whose baseline is in `scope`. */
  loadSuppressions(scope?: BaselineScope): Promise<SuppressionRecord[]>;
  getAlert(id: string): Promise<Alert | undefined>;
  /** Alerts matching every given field, last seen newest first (then first seen, then id, newest first). */
  listAlerts(filter: AlertListFilter): Promise<Alert[]>;
  /**
   * The alert a finding repeats: the latest-seen alert with this dedup key, last seen at or after
   * `fromMs`, first seen at or before `toMs`, and neither marked expected nor superseded.
   */
  findRepeat(dedupKey: string, fromMs: number, toMs: number): Promise<Alert | undefined>;
  /** Every alert raised on an identity's chain of a trace (`traceId` in either case), in no particular order. */
  alertsOfChain(traceId: string, identity: string): Promise<Alert[]>;
  /** Whether any held chain of this identity and trace is stored (held out by any alert). */
  isHeld(identity: string, traceId: string): Promise<boolean>;
  /** Held chains of an alert. */
  heldByAlert(alertId: string): Promise<HeldChain[]>;
  /**
   * An identity's held chains whose alert is not marked expected, each trace once, newest start
   * first, at most `limit` (the alert-only parts of its graph).
   */
  heldChainsOf(identity: string, limit: number): Promise<Chain[]>;
  /** Open alerts (no verdict yet) by detector and severity. */
  openAlertCounts(): Promise<Array<{ detector: string; severity: string; count: number }>>;
  /**
   * Baselines in total and those enforcing: enforcing since a time, or with at least `minCalls`
   * calls (and more than none) over at least `periodMs` of event time (learn/baseline.ts's rule).
   */
  baselineCounts(learning: { minCalls: number; periodMs: number }): Promise<{ total: number; enforcing: number }>;
}

export interface DetectionStateWriter {
  /**
   * Commits the checkpoint in one transaction. Resolved: every part of it is durable and visible
   * to every reader; rejected: none of it is. Checkpoints are applied in call order. The backend
   * reads the checkpoint's values during the call itself (before it first waits), so the caller
   * may change those objects once the call has returned.
   */
  checkpoint(checkpoint: DetectionCheckpoint): Promise<void>;
}

export type DetectionState = DetectionStateReader & DetectionStateWriter;

// ---------------------------------------------------------------------------------------------
// (d) The alert delivery outbox

/** Why an alert is delivered: raised (or a counted repeat), or its status changed (a verdict). */
export type OutboxEventKind = 'alert' | 'feedback';

/**
 * Where one delivery stands: waiting (or being tried), done, given up after its retries, or given
 * up for good by an operator (a dead delivery discarded: done, for alert retention).
 */
export type DeliveryState = 'pending' | 'delivered' | 'dead' | 'discarded';

/**
 * An alert event to deliver, enqueued by a detection checkpoint: one delivery per named sink,
 * all pending, due at once. The event gets the alert's next delivery sequence number (1, 2, ...
 * per alert, shared by its sinks). The alert must be stored by the same checkpoint or before;
 * an event of an unknown alert enqueues nothing.
 */
export interface OutboxEvent {
  /** The alert as it is to be delivered (read during the `checkpoint` call, like the rest). */
  alert: Alert;
  event: OutboxEventKind;
  /** The sinks that want it (their names); none: nothing is enqueued. */
  sinks: readonly string[];
  /** Wall-clock time of the enqueue, ms. */
  atMs: number;
}

/** Names one delivery: an alert's event (by sequence) to one sink. */
export interface DeliveryKey {
  alertId: string;
  seq: number;
  sink: string;
}

/** An operator's choice of an alert's dead deliveries: all of them, or one sink's, or one event's (`seq`), or one. */
export interface DeadDeliveries {
  alertId: string;
  sink?: string;
  seq?: number;
}

/** A delivery a worker claimed: the event and the alert as enqueued. */
export interface OutboxEntry extends DeliveryKey {
  event: OutboxEventKind;
  alert: Alert;
  /** Attempts so far, the claimed one included. */
  attempts: number;
  createdMs: number;
}

/** One delivery as stored (the API's view; times are wall-clock ms). */
export interface DeliveryRecord extends DeliveryKey {
  event: OutboxEventKind;
  state: DeliveryState;
  attempts: number;
  lastError?: string;
  createdMs: number;
  /** When it was delivered, or given up. */
  doneMs?: number;
  /** Pending: when it is due (again). */
  dueMs?: number;
}

/**
 * The deliveries that detection checkpoints enqueue (`DetectionCheckpoint.outbox`), worked by one
 * worker per sink: claim what is due, send it, mark it delivered or failed. Times here are wall
 * clock (ms since the epoch), not event time.
 */
export interface AlertOutbox {
  /**
   * Claims up to `limit` pending deliveries of `sink` due at `nowMs`, oldest enqueued first. Each
   * has its attempt counted and is not due again before `nowMs + leaseMs` (a worker that dies
   * mid-attempt leaves it to be claimed again then). Resolved: the claim is durable.
   */
  claim(sink: string, nowMs: number, limit: number, leaseMs: number): Promise<OutboxEntry[]>;
  /** Marks a pending delivery delivered at `nowMs`; false when it is not pending (already done). */
  delivered(key: DeliveryKey, nowMs: number): Promise<boolean>;
  /**
   * Records a failed attempt: pending again and due at `retryAtMs`, or dead (given up, kept for
   * inspection) when `retryAtMs` is undefined. False when the delivery is not pending.
   */
  failed(key: DeliveryKey, error: string, retryAtMs: number | undefined, nowMs: number): Promise<boolean>;
  /**
   * Makes every pending delivery of `sink` due at `nowMs` (claims and backoffs of an earlier
   * process lapse). For the one worker of a sink at its start. Returns how many were pending.
   */
  resume(sink: string, nowMs: number): Promise<number>;
  /** How many deliveries of `sink` are pending, and the earliest due time among them (absent when none). */
  pending(sink: string): Promise<{ count: number; nextDueMs?: number }>;
  /** The alert's last delivery sequence number (0 when none was enqueued, or the alert is unknown). */
  sequence(alertId: string): Promise<number>;
  /** An alert's deliveries, by sink, newest event first (at most `limit`). */
  deliveries(alertId: string, limit: number): Promise<DeliveryRecord[]>;
  /** Stored deliveries by sink and state. */
  counts(): Promise<Array<{ sink: string; state: DeliveryState; count: number }>>;
  /**
   * One bounded retention step: deletes at most `maxRows` deliveries delivered before `beforeMs`
   * (dead and discarded ones stay). Returns how many.
   */
  pruneDelivered(beforeMs: number, maxRows: number): Promise<number>;
  /**
   * An operator's retry (the receiver is mended): the chosen dead deliveries are pending again,
   * due at `nowMs`, with their attempts counted from 0 (the sink's retries apply anew; the last
   * error stays until the next attempt). Deliveries in another state are left alone. Returns the
   * deliveries changed.
   */
  redrive(which: DeadDeliveries, nowMs: number): Promise<DeliveryKey[]>;
  /**
   * An operator gives the chosen dead deliveries up for good: `discarded`, done at `nowMs`.
   * Alert retention counts them done (a closed alert whose deliveries are all delivered or
   * discarded can age out). Deliveries in another state are left alone. Returns those changed.
   */
  discard(which: DeadDeliveries, nowMs: number): Promise<DeliveryKey[]>;
}

// ---------------------------------------------------------------------------------------------
// (d') Alert retention

/** Where an alert retention sweep goes on: after this alert in (last seen, id) order. */
export interface AlertPruneCursor {
  lastSeenMs: number;
  id: string;
}

/** What one alert retention step did. */
export interface AlertPruneResult {
  /** Alerts deleted. */
  alerts: number;
  /** Chains those alerts held out of learning, deleted with them. */
  held: number;
  /** Their delivered outbox entries, deleted with them. */
  deliveries: number;
  /**
   * Set when the step read a full page of alerts last seen before the time: the next step goes on
   * after it. Absent: the sweep has read every such alert.
   */
  next?: AlertPruneCursor;
}

export interface AlertRetention {
  /**
   * One bounded step of deleting old alerts: reads at most `maxRows` alerts last seen (event time)
   * before `beforeMs`, in (last seen, id) order after `after` (from the oldest when absent), and
   * deletes those of them that are closed (a verdict was given, or they were superseded) and have
   * nothing waiting or given up in the outbox (every delivery of theirs is `delivered`), together
   * with their held chains and their delivered outbox entries. An open alert, or one with a
   * `pending` or `dead` delivery, is never deleted. Suppressions its verdict made stay (they are
   * learned state). Resolved: the deleted alerts and what hung off them are gone for every
   * reader, together; a checkpoint that writes one of them meanwhile either comes first (and the
   * alert is kept when it no longer qualifies) or stores it again after.
   */
  pruneAlerts(beforeMs: number, maxRows: number, after?: AlertPruneCursor): Promise<AlertPruneResult>;
}

// ---------------------------------------------------------------------------------------------
// (e) Learned operation templates

/**
 * The path positions learned to be parameters (the processor's `PathParameterStore`: the engine
 * templates operations with them). Positions are only added, keyed by (peer, method, segments,
 * prefix); a position added twice keeps its first `learnedMs`. `savePathParameters` resolved:
 * every position is durable and `loadPathParameters` (of any reader of this backend) returns it.
 */
export type OperationTemplateStore = PathParameterStore;
export type { LearnedPathParameter };

// ---------------------------------------------------------------------------------------------
// The ingest journal of older versions (SQLite only)

/** A request of the journal versions before the segment log kept in the database. */
export interface LegacyJournalRequest {
  receivedMs: number;
  spans: number;
  /** `protobuf`, `json` or `decoded` as stored; the journal refuses others. */
  format: string;
  body: Buffer;
  /** Traces the request still waited for. */
  traces: Set<string>;
}

export interface LegacyJournal {
  /** Calls `onRequest` for each request still waiting for a trace, oldest first, one body in memory at a time. */
  read(onRequest: (request: LegacyJournalRequest, seq: number) => void): Promise<void>;
  /** Empties the legacy tables (they stay). Resolved: a later `read` finds nothing. */
  clear(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// One backend

/**
 * A backend whose database is a server that can be down or restarting (PostgreSQL). While it is
 * out of reach, writes (`writeChains`, `replaceTraceChains`, `checkpoint`) wait and try again
 * until it answers, in call order, instead of failing; new requests should be refused with a
 * retryable answer meanwhile, so that what was acknowledged drains first.
 */
export interface StorageAvailability {
  /** False from a write that found the database out of reach until one that succeeded. */
  available(): boolean;
  /** Milliseconds a refused sender should wait before it tries again. */
  retryAfterMs(): number;
  /** Ends the waiting: writes waiting for the database, and later ones that fail, reject (shutdown). */
  stopRetrying(): void;
}

/** Which backend to open (config `storage`): PostgreSQL when `postgres.url` is set, else SQLite at `path`. */
export interface StorageSelection {
  /** SQLite file; `:memory:` for a throw-away store. */
  path: string;
  postgres?: { url: string };
}

export interface StorageOpenOptions {
  logger?: Logger;
}

/** An open backend: its readers and writers, readiness, and close. */
export interface StorageBackend {
  /** `sqlite` or `postgres`. */
  readonly kind: string;
  /** Where it stores, for logs: the file, or the URL without its password. */
  readonly location: string;
  readonly chainWriter: ChainWriter;
  readonly chainReader: ChainReader;
  readonly retention: ChainRetention;
  readonly identities: IdentityReader;
  readonly detection: DetectionState;
  /** Alert deliveries enqueued by detection checkpoints. */
  readonly outbox: AlertOutbox;
  /** Deletes old closed alerts (`storage.alertRetention`). */
  readonly alertRetention: AlertRetention;
  readonly templates: OperationTemplateStore;
  /** The older versions' journal tables, where the backend can hold them (SQLite). */
  readonly legacyJournal?: LegacyJournal;
  /** Where the database can be out of reach for a while (a server): see StorageAvailability. */
  readonly availability?: StorageAvailability;
  /** Where several instances can share the database as one cluster (PostgreSQL): see ClusterStore. */
  readonly cluster?: ClusterStore;
  /** Whether the backend answers now (the server is reachable, the file open); never throws. */
  ready(): Promise<boolean>;
  /** Bytes the stored data takes, as far as the backend can tell. */
  sizeBytes(): Promise<number>;
  /** Highest applied migration of this backend's own numbering. */
  schemaVersion(): Promise<number>;
  /** Closes every connection; safe to call twice. Calls after it reject. */
  close(): Promise<void>;
}

/** Opens (creating and migrating when needed) one backend. */
export type OpenStorage = (selection: StorageSelection, options?: StorageOpenOptions) => Promise<StorageBackend>;

// ---------------------------------------------------------------------------------------------
// (d) Clusters (an optional ability, as Jaeger v2 keeps optional abilities in interfaces of
// their own): what instances sharing one database need from it: membership with heartbeats,
// partition leases fenced by an epoch, the chain hand-off from the instance that stitched a chain
// to the owner of its identity's partition, and cluster-wide flush requests. PostgreSQL has it
// (store/postgres/cluster.ts); SQLite does not (one process per file). Times of heartbeats are
// the database server's clock, so instances with skewed clocks agree on who is alive.

/** One running instance as the cluster sees it. */
export interface ClusterInstanceRecord {
  id: string;
  /** Its API address (`host:port`), as it announced it. */
  endpoint: string;
  /** ms since the epoch (server clock) of its last heartbeat. */
  lastHeartbeatMs: number;
  /** The highest cluster flush request it has answered. */
  flushed: number;
}

/** One partition's lease and hand-off position. */
export interface PartitionRecord {
  partition: number;
  /** The instance holding the lease, or undefined when none ever held it. */
  owner?: string;
  /** Raised on every take-over. */
  epoch: number;
  /** Sequence number of the newest hand-off item. */
  head: number;
  /** Sequence number its owner has analysed up to (committed). */
  committed: number;
}

/** An item handed to the owner of a partition: chains, later parts of traces, or a verdict (opaque JSON). */
export interface HandOffItem {
  partition: number;
  kind: string;
  body: unknown;
}

/** A hand-off item as read back, in sequence order within its partition. */
export interface HandedOff extends HandOffItem {
  seq: number;
  /** Wall-clock ms when it was handed off (for the backlog age). */
  handedMs: number;
}

/** A lease held: the epoch it was taken with fences every commit for the partition. */
export interface Lease {
  partition: number;
  epoch: number;
}

/**
 * One dedicated database session of an instance: it holds the session advisory locks of the
 * partitions the instance owns (the database drops them when the session ends, so a process
 * killed with SIGKILL loses its leases at once) and listens for hand-off and flush notifications.
 */
export interface LeaseSession {
  /** The server process id of this session (stored in `cluster_instances.lock_pid`). */
  readonly pid: number;
  /** False once the session broke (the server restarted, the connection was cut); a new one is needed. */
  readonly alive: boolean;
  /**
   * Tries to take a partition: its advisory lock (without waiting), then a new epoch with this
   * instance as owner. Undefined when another session holds the lock, or a transaction still
   * holds the partition's row (a hung former owner's commit): the next round tries again.
   */
  tryAcquire(partition: number): Promise<Lease | undefined>;
  /**
   * Refreshes the instance's heartbeat over this session (a connection of its own, so a busy pool
   * never delays it); false when its row is gone (it was fenced out and must register again).
   */
  heartbeat(): Promise<boolean>;
  /** Gives a partition's lock back (the epoch stays until the next owner raises it). */
  release(partition: number): Promise<void>;
  /** Closes the session (every lock it holds is dropped). Safe twice. */
  close(): Promise<void>;
}

export interface ClusterStoreOptions {
  /** Called with the partitions named by a hand-off notification (possibly several times, possibly spurious). */
  onHandOff?(partitions: readonly number[]): void;
  /** Called with the id of a cluster flush request when one is made. */
  onFlushRequest?(id: number): void;
  /** Called once when the session breaks. */
  onBroken?(err: Error): void;
}

export interface ClusterStore {
  /**
   * Makes sure the partition rows 0..partitions-1 exist. The count is fixed for a database: a
   * different count than the one stored is refused (partitions would map identities differently).
   * When it creates them, every stored baseline is put in its identity's group (`groupOf`): a
   * database used by one instance before becomes a cluster's.
   */
  preparePartitions(partitions: number, groupOf: (identity: string) => number): Promise<void>;
  /** Opens an instance's lease session. */
  openSession(instanceId: string, options?: ClusterStoreOptions): Promise<LeaseSession>;
  /** Records the instance (or refreshes it) with its endpoint and lease session; the heartbeat is now. */
  register(instance: { id: string; endpoint: string; lockPid: number }): Promise<void>;
  /** Removes the instance's row (a clean stop). */
  deregister(instanceId: string): Promise<void>;
  /** Instances with a heartbeat within `timeoutMs` (server clock), by id. */
  liveInstances(timeoutMs: number): Promise<ClusterInstanceRecord[]>;
  /**
   * Ends the lease sessions of instances whose heartbeat is older than `timeoutMs` (a hung or
   * partitioned process still holding locks) and removes their rows. Returns their ids.
   */
  fenceStale(timeoutMs: number): Promise<string[]>;
  /** Every partition's record, by partition. */
  partitions(): Promise<PartitionRecord[]>;
  /**
   * Appends items to their partitions' hand-off queues in one transaction, numbering them per
   * partition in commit order, and wakes the owners (a notification). Resolved: every item is
   * durable and readable by its owner.
   */
  handOff(items: readonly HandOffItem[], fromInstance: string): Promise<void>;
  /** A partition's items after sequence `after`, oldest first, at most `limit`. */
  readHandOff(partition: number, after: number, limit: number): Promise<HandedOff[]>;
  /**
   * Commits the owner's analysis of a partition in one transaction: only while the partition's
   * epoch is still `lease.epoch` (else FencedError, nothing written); then the detection
   * checkpoint, the committed offset `offset` (when given) and the removal of the items up to it.
   */
  commitAnalysis(lease: Lease, checkpoint: DetectionCheckpoint, offset?: number): Promise<void>;
  /**
   * The same for the analysis of several partitions at once (one checkpoint): only while every
   * partition's epoch holds (else FencedError for the first that moved, nothing written), with
   * each partition's offset.
   */
  commitAnalyses(fences: ReadonlyArray<{ lease: Lease; offset?: number }>, checkpoint: DetectionCheckpoint): Promise<void>;
  /** Items of several partitions, each after its own `after`, at most `limit` per partition; by partition, oldest first. */
  readHandOffMany(from: ReadonlyArray<{ partition: number; after: number }>, limit: number): Promise<HandedOff[]>;
  /** Records a cluster flush request, wakes every instance, and returns its id. */
  requestFlush(): Promise<number>;
  /** The newest flush request id (0 when none). */
  latestFlush(): Promise<number>;
  /** Records that the instance has answered flush requests up to `id`. */
  acknowledgeFlush(instanceId: string, id: number): Promise<void>;
}
