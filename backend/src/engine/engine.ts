import { Counter, type Registry } from 'prom-client';
import type { Chain, ChainBatch, ChainConsumer, LearnedPathParameter, Logger, TraceSummary } from '@conduct/processor';
import { BOUNDARY_IDENTITY, silentLogger } from '@conduct/processor';
import type { Alert } from '../alerts/model.js';
import { failpoint } from '../failpoint.js';
import type { BatchUnit, ChainReader, ChainWriter, DetectionCheckpoint } from '../store/index.js';
import { addedChains, hasLateParts, LATE_OUTCOMES, splitLateParts, type LateMerge, type LateSplit } from './late.js';
import { createRecentTraces, IdChunks, MAX_SEEDED_IDS, type RecentTraces } from './recent-traces.js';
import type { OperationTemplater } from './templates.js';

/** Default of {@link EngineOptions.lateTraceWindowMs}: the pipeline's default window. */
export const DEFAULT_LATE_TRACE_WINDOW_MS = 300_000;

/** Why an alert is announced: freshly raised (or repeated), or changed by an operator's verdict. */
export type AlertEvent = 'alert' | 'feedback';

/** Hears every alert the analysers emit (sinks, the live UI). Must not throw; errors are logged. */
export type AlertListener = (alert: Alert, event: AlertEvent) => void;

/** What an analyser gets with each batch of chains. */
export interface AnalysisContext {
  /**
   * The stored chains: the batch's included for an analyser without `transactional`; for one
   * with it, the batch's own are stored by its `commit`.
   */
  store: ChainReader;
  logger: Logger;
  /** Announces an alert to every listener. */
  emit(alert: Alert, event?: AlertEvent): void;
  /**
   * Stores the part of the batch being analysed (its chains and summaries, or the traces later
   * parts were merged into) and this checkpoint in one transaction. Once a part is stored, a
   * further call writes the checkpoint alone. Rejects when the storage fails: the batch is then
   * not stored, and its journaled requests stay unsettled. `handOff` (the cluster's stage 1)
   * commits the items it hands to partition owners in the same transaction.
   */
  commit(checkpoint?: DetectionCheckpoint, handOff?: BatchUnit['handOff']): Promise<void>;
  /**
   * Set when the chains are those of several batches stored in one write (Engine.consumeMany):
   * where each batch's chains end in the analysed chains, which come batch by batch. An analyser
   * that orders chains (detection, by start time) orders each batch's among themselves, so that
   * what it finds does not depend on which batches shared a write.
   */
  batchEnds?: readonly number[];
}

/**
 * Looks at chains of each batch (detection plugs in here). A failure is logged and counted;
 * the chains are stored still and later analysers still run.
 */
export interface Analyser {
  /** Label for logs and the `conduct_analyser_errors_total` metric. */
  name: string;
  /**
   * The analyser keeps state in the store that must advance with the chains (learned baselines,
   * alerts): it runs before the chains are stored and calls `ctx.commit` once per `analyse` or
   * `analyseLate`, which stores them together with its checkpoint. Analysers without it run
   * after the chains are stored.
   */
  transactional?: boolean;
  analyse(chains: readonly Chain[], ctx: AnalysisContext): Promise<void> | void;
  /**
   * Optional: later parts of traces merged into their stored chains (after the merge is stored).
   * Without it, the analyser gets the calls each part added, as chains, through `analyse`.
   */
  analyseLate?(merges: readonly LateMerge[], ctx: AnalysisContext): Promise<void> | void;
  /**
   * Optional: path positions just learned to be parameters (engine/templates.ts), before the
   * batch that taught them is analysed; from this batch on, calls carry the templated operation.
   */
  pathParametersLearned?(parameters: readonly LearnedPathParameter[]): Promise<void> | void;
  /**
   * A failure of this analyser fails the batch (the consumer rejects, so the journal keeps its
   * requests for a replay) instead of being logged and passed over: for an analyser that hands
   * the chains on (the cluster's hand-off), where a skipped batch would be lost.
   */
  critical?: boolean;
}

export interface EngineOptions {
  /** Where chains are written and read (the storage backend's chain writer and reader). */
  store: { chainWriter: ChainWriter; chainReader: ChainReader };
  /** Where `conduct_engine_*` metrics are registered. */
  registry: Registry;
  logger?: Logger;
  /** Analysers run in order on every batch. More can be added with `addAnalyser`. */
  analysers?: Analyser[];
  /** Alert listeners. More can be added with `onAlert`. */
  onAlert?: AlertListener[];
  /**
   * `stitching.lateTraceWindow` (ms): a part the pipeline could not tell from a new trace
   * (`late: 'maybe'`) joins a stored trace that ended at most this long (event time) before it.
   */
  lateTraceWindowMs?: number;
  /**
   * Remember the trace ids this engine stores (engine/recent-traces.ts), so that a part the
   * pipeline marks `late: 'maybe'` is looked up in the store only when this engine may have
   * stored its trace within the window. `earlierPartsStored`: the store held traces when the
   * engine was built. The engine then reads the ids of the traces stored within the window before
   * it started (`ChainReader.recentTraceIds`) into that memory; until it has them, or when the
   * store cannot tell, every `maybe` part is looked up during the window after the first batch (as
   * the pipeline marks every trace `maybe` then). Absent: every `maybe` is looked up.
   * `onEarlierTraces`: receives those ids once all are read, 16 bytes each one after another in
   * chunks of at most EARLIER_TRACES_PER_CHUNK (recent-traces.ts; ids that are not 32 hex digits left out), for the
   * pipeline's stitcher (Stitcher.earlierTraces), which marks every trace `maybe` until then.
   */
  recentTraces?: { earlierPartsStored: boolean; onEarlierTraces?: (chunks: Uint8Array[]) => void };
  /** Learned path parameters applied to each batch before it is stored (none when absent). */
  templater?: OperationTemplater;
  /** Wall clock (ms since the epoch) that stamps each stored chain's `receivedMs`; Date.now by default. */
  now?: () => number;
}

export interface EngineStats {
  batches: number;
  /** Spans of the consumed batches' traces (ChainBatch.spans). */
  spans: number;
  chains: number;
  calls: number;
  rejectedChains: number;
  analyserErrors: number;
  alerts: number;
  /** Later parts of traces merged into their stored chains. */
  lateMerges: number;
  /** Traces a journal replay fed again that were stored whole already (not stored or analysed again). */
  replayDuplicates: number;
  /** Writes of batches' on-time chains: batches consumed together (consumeMany) share one. */
  writes: number;
}

/**
 * The backend's chain consumer: store, then analyse, then announce alerts. Batches given together
 * to `consumeMany` that hold no later part of a stored trace and nothing a journal replayed are
 * stored in one write (one transaction with one detection pass and checkpoint) as long as no
 * batch among them taught path parameters; the others, and a batch that did, start a write of
 * their own. What is stored and found is what consuming them one by one would give.
 */
export interface Engine extends ChainConsumer {
  consumeMany(batches: readonly ChainBatch[]): Promise<Array<{ err: unknown } | undefined>>;
  addAnalyser(analyser: Analyser): void;
  /** Registers a listener; the returned function removes it. */
  onAlert(listener: AlertListener): () => void;
  /** Announces an alert raised outside `consume` (an operator's verdict, for instance). */
  emit(alert: Alert, event?: AlertEvent): void;
  stats(): EngineStats;
}

const NO_IDS: ReadonlySet<string> = new Set();

/** One turn of the event loop (after the poll phase's I/O). */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Lets the requests that finished meanwhile be answered before more synchronous work: the
 * pipeline thread's answers come in during the poll phase and queue the journal's group commit
 * (a setImmediate) behind the first turn, so a second turn lets that commit run, and the answers
 * out, first. Without it a request's answer waited for the analysis and the store write of a
 * write together (tens of ms; bench/README.md, "Main thread turns").
 */
async function letAnswersThrough(): Promise<void> {
  await nextTurn();
  await nextTurn();
}

export function createEngine(options: EngineOptions): Engine {
  const { store, registry } = options;
  const logger = options.logger ?? silentLogger;
  const analysers = [...(options.analysers ?? [])];
  const listeners = new Set<AlertListener>(options.onAlert ?? []);
  const stats: EngineStats = { batches: 0, spans: 0, chains: 0, calls: 0, rejectedChains: 0, analyserErrors: 0, alerts: 0, lateMerges: 0, replayDuplicates: 0, writes: 0 };
  const windowMs = options.lateTraceWindowMs ?? DEFAULT_LATE_TRACE_WINDOW_MS;
  const now = options.now ?? Date.now;
  const recent = options.recentTraces ? createRecentTraces(windowMs) : undefined;
  /** When the first batch came (the window after it may hold parts of traces stored before). */
  let firstBatchMs: number | undefined;
  /** Whether `recent` holds the traces stored within the window before this engine started. */
  let seeded = recent !== undefined && options.recentTraces?.earlierPartsStored !== true;
  if (recent && !seeded) void seedRecent(recent);

  const chainsStored = new Counter({ name: 'conduct_chains_stored_total', help: 'Chains written to the store.', registers: [registry] });
  const callsStored = new Counter({ name: 'conduct_calls_stored_total', help: 'Calls written to the store.', registers: [registry] });
  const spansProcessed = new Counter({
    name: 'conduct_spans_processed_total',
    help: 'Spans of completed traces that went through the store and every analyser (the end-to-end processed count).',
    registers: [registry],
  });
  const chainsRejected = new Counter({
    name: 'conduct_chains_rejected_total',
    help: 'Chains the store refused (malformed trace id).',
    registers: [registry],
  });
  const analyserErrors = new Counter({
    name: 'conduct_analyser_errors_total',
    help: 'Analyser failures (logged; the chains stay stored).',
    labelNames: ['analyser'],
    registers: [registry],
  });
  const lateSpans = new Counter({
    name: 'conduct_late_spans_total',
    help: 'Spans of later parts of completed traces, by outcome: joined (merged into the stored trace), fragment (past stitching.lateTraceWindow: stored on its own), missing (the earlier part is no longer stored).',
    labelNames: ['outcome'],
    registers: [registry],
  });
  for (const outcome of LATE_OUTCOMES) lateSpans.inc({ outcome }, 0);
  const replayDuplicates = new Counter({
    name: 'conduct_replay_duplicate_traces_total',
    help: 'Traces a journal replay after a restart fed again that were stored whole already: not stored, learned or alerted on twice.',
    registers: [registry],
  });
  const writes = new Counter({
    name: 'conduct_engine_writes_total',
    help: 'Store writes of completed traces\' chains: batches that waited together share one (conduct_pipeline_batches_total / this is batches per write).',
    registers: [registry],
  });
  const alertsEmitted = new Counter({
    name: 'conduct_alerts_total',
    help: 'Alerts announced, by detector and severity (repeats and verdicts included, by event).',
    labelNames: ['detector', 'severity', 'event'],
    registers: [registry],
  });

  function emit(alert: Alert, event: AlertEvent = 'alert'): void {
    stats.alerts++;
    alertsEmitted.inc({ detector: alert.detector, severity: alert.severity, event });
    for (const listener of listeners) {
      try {
        listener(alert, event);
      } catch (err) {
        logger.warn({ err: String(err), alert: alert.id }, 'alert listener failed');
      }
    }
    failpoint('alerts.emitted');
  }
  const countWrite = (written: { chains: number; calls: number; rejected: number }) => {
    stats.chains += written.chains;
    stats.calls += written.calls;
    stats.rejectedChains += written.rejected;
    chainsStored.inc(written.chains);
    callsStored.inc(written.calls);
    if (written.rejected) chainsRejected.inc(written.rejected);
  };

  const countWrites = () => {
    stats.writes++;
    writes.inc();
  };

  const announceParameters = async (learned: readonly LearnedPathParameter[]) => {
    for (const analyser of analysers) {
      try {
        await analyser.pathParametersLearned?.(learned);
      } catch (err) {
        stats.analyserErrors++;
        analyserErrors.inc({ analyser: analyser.name });
        logger.error({ err: String(err), analyser: analyser.name }, 'analyser failed on learned path parameters');
      }
    }
  };

  /** Runs `analyse` on each analyser in `list`; a failure is logged and counted. */
  const runEach = async (list: readonly Analyser[], ctx: AnalysisContext, analyse: (a: Analyser, ctx: AnalysisContext) => Promise<void> | void) => {
    for (const analyser of list) {
      try {
        await analyse(analyser, ctx);
      } catch (err) {
        stats.analyserErrors++;
        analyserErrors.inc({ analyser: analyser.name });
        if (analyser.critical) throw err;
        logger.error({ err: String(err), analyser: analyser.name }, 'analyser failed on a batch');
      }
    }
  };

  /**
   * Analyses and stores one part of a batch: the transactional analysers first, the first of them
   * to commit storing the part with its checkpoint (or the part alone after them, when none did),
   * then the others, which see it stored. Rejects when the part could not be stored.
   */
  const storeAndAnalyse = async (unit: BatchUnit, analyse: (a: Analyser, ctx: AnalysisContext) => Promise<void> | void, batchEnds?: readonly number[]) => {
    let pending: BatchUnit | undefined = unit;
    let failure: { err: unknown } | undefined;
    const commit = async (checkpoint?: DetectionCheckpoint, handOff?: BatchUnit['handOff']) => {
      const part = pending;
      pending = undefined;
      try {
        failpoint('engine.analysed');
        // Analysis and the store write are each one stretch of synchronous work on this thread.
        if (part) await letAnswersThrough();
        const written = await store.chainWriter.commitBatch({ ...part, ...(checkpoint ? { checkpoint } : {}), ...(handOff ? { handOff } : {}) });
        failpoint('engine.committed');
        if (part) countWrite(written);
      } catch (err) {
        failure ??= { err };
        throw err;
      }
    };
    const ctx: AnalysisContext = { store: store.chainReader, logger, emit, commit, ...(batchEnds ? { batchEnds } : {}) };
    await runEach(analysers.filter((a) => a.transactional), ctx, analyse);
    if (pending && !failure) await commit();
    // Storage errors reject: the pipeline counts and logs them, and the journal keeps the requests.
    if (failure) throw failure.err;
    await runEach(analysers.filter((a) => !a.transactional), ctx, analyse);
  };

  /**
   * Reads the ids of the traces stored within the window before now into `recent`, in the
   * background: batches consumed meanwhile look every `maybe` part up. Logs what it found.
   */
  async function seedRecent(into: RecentTraces): Promise<void> {
    const startedMs = now();
    const seed = into.seed(startedMs);
    const onEarlier = options.recentTraces?.onEarlierTraces;
    const packed = onEarlier ? new IdChunks() : undefined;
    let ids = 0;
    try {
      const complete = await store.chainReader.recentTraceIds(startedMs - windowMs, MAX_SEEDED_IDS, (traceId) => {
        ids++;
        seed.add(traceId);
        packed?.add(traceId);
      });
      if (!complete) {
        logger.info({ ids }, 'traces stored before the start not known: later parts of any trace are looked up for stitching.lateTraceWindow');
        return;
      }
      seed.close();
      seeded = true;
      if (onEarlier && packed) onEarlier(packed.take());
      logger.info({ ids, ms: now() - startedMs }, 'traces stored within stitching.lateTraceWindow before the start read');
    } catch (err) {
      logger.warn({ err: String(err) }, 'traces stored before the start could not be read: later parts of any trace are looked up for stitching.lateTraceWindow');
    }
  }

  /**
   * Whether a trace id may be stored already, for a part the pipeline marked `maybe` at `t`:
   * undefined when any may be (look every such part up).
   */
  const mayBeStoredAt = (t: number): ((traceId: string) => boolean) | undefined =>
    recent && (seeded || !(options.recentTraces!.earlierPartsStored && t - (firstBatchMs ?? t) <= windowMs)) ? (traceId: string) => recent.mayHold(traceId, t) : undefined;

  /** Templates the batch's operations with the learned path parameters (before anything sees them): the parameters it taught. */
  const template = (batch: ChainBatch): LearnedPathParameter[] => options.templater?.apply(chainsOf(batch)) ?? [];

  /** Stores and analyses one batch, templated already (`learned`: what it taught). */
  const consumeOne = async (batch: ChainBatch, learned: readonly LearnedPathParameter[]) => {
    const chains = chainsOf(batch);
    await options.templater?.persist();
    const summaries = batch.traceSummaries ?? [];
    const replayed = batch.replayed?.length ? new Set(batch.replayed.map((id) => String(id).toLowerCase())) : undefined;
    // Later parts of stored traces are merged into them (read before the batch is written);
    // so are replayed traces the store holds already, call by call (span ids), so that a
    // replay after a crash stores and learns each call once.
    const t = now();
    firstBatchMs ??= t;
    const mayBeStored = mayBeStoredAt(t);
    const late: LateSplit =
      hasLateParts(summaries) || replayed
        ? await splitLateParts(store.chainReader, chains, summaries, windowMs, replayed, mayBeStored)
        : { onTime: chains, merges: [], spans: { joined: 0, fragment: 0, missing: 0 }, replayedSpans: 0 };
    // Noted before anything is written: a batch that fails after storing a part must not be missed.
    if (recent) noteStored(recent, chains, summaries, t);
    // A part that changes nothing (a copy of what is stored: a replay, a sender's retry) is
    // neither stored nor analysed again.
    const unchanged = (m: LateMerge) => m.added.length === 0 && m.removed.length === 0;
    const merges = late.merges.filter((m) => !unchanged(m));
    const duplicates = late.merges.filter((m) => m.replayed && unchanged(m)).length;
    stats.replayDuplicates += duplicates;
    if (duplicates > 0) replayDuplicates.inc(duplicates);
    const at = now();
    const received = batch.replayedReceivedMs;
    stampReceived(chains, late.merges, received?.size ? (traceId) => received.get(String(traceId).toLowerCase()) ?? at : () => at);
    const mergedIds = new Set(late.merges.map((m) => m.traceId));
    const changedIds = new Set(merges.map((m) => m.traceId));
    const idOf = (t: { traceId: string }) => (typeof t.traceId === 'string' ? t.traceId.toLowerCase() : '');

    if (learned.length > 0) await announceParameters(learned);
    // The on-time chains with their summaries, then the merged traces with theirs: each part
    // stored in one transaction with what the analysers learned and raised from it.
    const onTime = late.onTime;
    const analysed = onTime.filter((c) => store.chainWriter.accepts(c));
    await storeAndAnalyse({ chains: onTime, traces: mergedIds.size > 0 ? summaries.filter((t) => !mergedIds.has(idOf(t))) : summaries }, (a, ctx) =>
      analysed.length > 0 ? a.analyse(analysed, ctx) : undefined,
    );
    countWrites();
    stats.batches++;
    if (merges.length > 0) {
      const unit: BatchUnit = {
        replaced: merges.map((m) => ({ traceId: m.traceId, chains: m.chains })),
        traces: summaries.filter((t) => changedIds.has(idOf(t))),
      };
      await storeAndAnalyse(unit, (a, ctx) => (a.analyseLate ? a.analyseLate(merges, ctx) : a.analyse(merges.flatMap(addedChains), ctx)));
      stats.lateMerges += merges.length;
    }
    for (const outcome of LATE_OUTCOMES) if (late.spans[outcome] > 0) lateSpans.inc({ outcome }, late.spans[outcome]);
    const spans = Number.isFinite(batch.spans) && batch.spans > 0 ? batch.spans : 0;
    stats.spans += spans;
    spansProcessed.inc(spans);
  };

  /**
   * Stores and analyses batches with no later parts and nothing replayed, templated already, in
   * one write: their chains batch after batch (`batchEnds` tells analysers where each ends), their
   * summaries, one detection pass and checkpoint. `learned`: what the first batch taught (the
   * others taught nothing, see consumeMany).
   */
  const consumeTogether = async (run: readonly ChainBatch[], learned: readonly LearnedPathParameter[]) => {
    await options.templater?.persist();
    const t = now();
    firstBatchMs ??= t;
    const chains: Chain[] = [];
    const summaries: TraceSummary[] = [];
    const analysed: Chain[] = [];
    const batchEnds: number[] = [];
    for (const batch of run) {
      const own = chainsOf(batch);
      const traces = batch.traceSummaries ?? [];
      if (recent) noteStored(recent, own, traces, t);
      // `maybe` parts that are new traces (see plain) come with boundary calls, which only a part
      // that joins a stored trace uses: they are dropped, as splitLateParts drops them.
      const boundaries = hasLateParts(traces);
      for (const chain of own) {
        if (boundaries && chain.identity === BOUNDARY_IDENTITY) continue;
        chains.push(chain);
        if (store.chainWriter.accepts(chain)) analysed.push(chain);
      }
      for (const trace of traces) summaries.push(trace);
      batchEnds.push(analysed.length);
    }
    const at = now();
    stampReceived(chains, [], () => at);
    if (learned.length > 0) await announceParameters(learned);
    await storeAndAnalyse({ chains, traces: summaries }, (a, ctx) => (analysed.length > 0 ? a.analyse(analysed, ctx) : undefined), batchEnds);
    countWrites();
    for (const batch of run) {
      stats.batches++;
      const spans = Number.isFinite(batch.spans) && batch.spans > 0 ? batch.spans : 0;
      stats.spans += spans;
      spansProcessed.inc(spans);
    }
  };

  /**
   * Whether a batch may share a write with others: nothing replayed, and no later part of a stored
   * trace. A `maybe` part is a new trace when this engine has not stored its trace lately
   * (`mayBeStored`; the store is asked when the memory cannot rule it out, as splitLateParts asks
   * it) and no batch before it in the write (`before`) holds it.
   */
  const plain = async (batch: ChainBatch, mayBeStored: ((traceId: string) => boolean) | undefined, before: () => ReadonlySet<string>): Promise<boolean> => {
    if (batch.replayed?.length) return false;
    const summaries = batch.traceSummaries;
    if (!hasLateParts(summaries)) return true;
    if (!mayBeStored) return false;
    for (const s of summaries!) {
      if (s.late === undefined) continue;
      if (s.late !== 'maybe' || typeof s.traceId !== 'string' || before().has(s.traceId.toLowerCase())) return false;
      if (mayBeStored(s.traceId) && (await storedOrUnknown(s.traceId))) return false;
    }
    return true;
  };
  /** Whether the store holds the trace; true when it cannot say (the batch then goes alone, and its own lookup meets the error). */
  const storedOrUnknown = async (traceId: string): Promise<boolean> => {
    try {
      return (await store.chainReader.traceSummary(traceId)) !== undefined;
    } catch {
      return true;
    }
  };

  return {
    consume: (batch: ChainBatch) => consumeOne(batch, template(batch)),

    async consumeMany(batches) {
      const failures: Array<{ err: unknown } | undefined> = batches.map(() => undefined);
      /** What batches[i] taught when it was templated ahead (to see whether it could join a write). */
      let taught: LearnedPathParameter[] | undefined;
      let i = 0;
      const mayBeStored = mayBeStoredAt(now());
      try {
        while (i < batches.length) {
          const learned = taught ?? template(batches[i]!);
          taught = undefined;
          let end = i + 1;
          // The trace ids of the write's batches so far, read when a `maybe` part needs them.
          let ids: Set<string> | undefined;
          let idsTo = i;
          const before = () => {
            ids ??= new Set();
            for (; idsTo < end; idsTo++) addTraceIds(ids, batches[idsTo]!);
            return ids;
          };
          if (await plain(batches[i]!, mayBeStored, () => NO_IDS)) {
            // Parameters a batch taught are announced before it is analysed and after the batches
            // before it are: a batch that taught some starts a write of its own.
            while (end < batches.length && (await plain(batches[end]!, mayBeStored, before))) {
              taught = template(batches[end]!);
              if (taught.length > 0) break;
              taught = undefined;
              end++;
            }
          }
          try {
            if (end - i === 1) await consumeOne(batches[i]!, learned);
            else await consumeTogether(batches.slice(i, end), learned);
          } catch (err) {
            for (let k = i; k < end; k++) failures[k] = { err };
          }
          i = end;
        }
      } catch (err) {
        // Templating failed (a bug): this batch and those after it are not consumed.
        for (let k = i; k < batches.length; k++) failures[k] = { err };
      }
      return failures;
    },
    addAnalyser(analyser) {
      analysers.push(analyser);
    },
    onAlert(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    emit,
    stats: () => ({ ...stats }),
  };
}

const chainsOf = (batch: ChainBatch): Chain[] => (Array.isArray(batch?.chains) ? batch.chains : []);

/** Adds the trace ids (lower case) of the batch's summaries and chains. */
function addTraceIds(ids: Set<string>, batch: ChainBatch): void {
  for (const s of batch.traceSummaries ?? []) if (typeof s.traceId === 'string') ids.add(s.traceId.toLowerCase());
  for (const chain of chainsOf(batch)) if (typeof chain.traceId === 'string') ids.add(chain.traceId.toLowerCase());
}

/** Notes the batch's trace ids (from its summaries, or its chains when a producer sent none). */
function noteStored(recent: RecentTraces, chains: readonly Chain[], summaries: readonly TraceSummary[], nowMs: number): void {
  if (summaries.length > 0) {
    for (const s of summaries) if (typeof s.traceId === 'string') recent.add(s.traceId, nowMs);
    return;
  }
  for (const chain of chains) if (typeof chain.traceId === 'string') recent.add(chain.traceId, nowMs);
}

/**
 * Stamps the wall-clock time each trace was received on its chains (the time the batch was handed
 * over to the engine, or for a trace a journal replayed, when the journal first received it) and
 * on the merged chains of identities a late part changed; a merged chain the part did not change
 * keeps the time it was first received.
 */
function stampReceived(chains: readonly Chain[], merges: readonly LateMerge[], receivedOf: (traceId: string) => number): void {
  for (const chain of chains) chain.receivedMs = receivedOf(chain.traceId);
  for (const merge of merges) {
    const before = new Map(merge.before.map((c) => [c.identity, c.receivedMs]));
    for (const chain of merge.chains) chain.receivedMs = (merge.identities.has(chain.identity) ? undefined : before.get(chain.identity)) ?? receivedOf(merge.traceId);
  }
}

export type { LateMerge };
