import { Counter, type Registry } from 'prom-client';
import type { Chain, ChainBatch, ChainConsumer, LearnedPathParameter, Logger } from '@conduct/processor';
import { silentLogger } from '@conduct/processor';
import type { Alert } from '../alerts/model.js';
import type { ChainReader, ChainWriter } from '../store/index.js';
import { addedChains, hasLateParts, LATE_OUTCOMES, splitLateParts, type LateMerge, type LateSplit } from './late.js';
import type { OperationTemplater } from './templates.js';

/** Default of {@link EngineOptions.lateTraceWindowMs}: the pipeline's default window. */
export const DEFAULT_LATE_TRACE_WINDOW_MS = 300_000;

/** Why an alert is announced: freshly raised (or repeated), or changed by an operator's verdict. */
export type AlertEvent = 'alert' | 'feedback';

/** Hears every alert the analysers emit (sinks, the live UI). Must not throw; errors are logged. */
export type AlertListener = (alert: Alert, event: AlertEvent) => void;

/** What an analyser gets with each batch of stored chains. */
export interface AnalysisContext {
  /** The stored chains (the batch's included). */
  store: ChainReader;
  logger: Logger;
  /** Announces an alert to every listener. */
  emit(alert: Alert, event?: AlertEvent): void;
}

/**
 * Looks at chains after they are stored (detection plugs in here). A failure is logged and
 * counted; the chains stay stored and later analysers still run.
 */
export interface Analyser {
  /** Label for logs and the `conduct_analyser_errors_total` metric. */
  name: string;
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
}

/** The backend's chain consumer: store, then analyse, then announce alerts. */
export interface Engine extends ChainConsumer {
  addAnalyser(analyser: Analyser): void;
  /** Registers a listener; the returned function removes it. */
  onAlert(listener: AlertListener): () => void;
  /** Announces an alert raised outside `consume` (an operator's verdict, for instance). */
  emit(alert: Alert, event?: AlertEvent): void;
  stats(): EngineStats;
}

export function createEngine(options: EngineOptions): Engine {
  const { store, registry } = options;
  const logger = options.logger ?? silentLogger;
  const analysers = [...(options.analysers ?? [])];
  const listeners = new Set<AlertListener>(options.onAlert ?? []);
  const stats: EngineStats = { batches: 0, spans: 0, chains: 0, calls: 0, rejectedChains: 0, analyserErrors: 0, alerts: 0, lateMerges: 0 };
  const windowMs = options.lateTraceWindowMs ?? DEFAULT_LATE_TRACE_WINDOW_MS;
  const now = options.now ?? Date.now;

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
  }
  const ctx: AnalysisContext = { store: store.chainReader, logger, emit };

  const countWrite = (written: { chains: number; calls: number; rejected: number }) => {
    stats.chains += written.chains;
    stats.calls += written.calls;
    stats.rejectedChains += written.rejected;
    chainsStored.inc(written.chains);
    callsStored.inc(written.calls);
    if (written.rejected) chainsRejected.inc(written.rejected);
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

  const runAnalysers = async (chains: readonly Chain[], merges: readonly LateMerge[]) => {
    for (const analyser of analysers) {
      try {
        if (chains.length > 0) await analyser.analyse(chains, ctx);
        if (merges.length === 0) continue;
        if (analyser.analyseLate) await analyser.analyseLate(merges, ctx);
        else await analyser.analyse(merges.flatMap(addedChains), ctx);
      } catch (err) {
        stats.analyserErrors++;
        analyserErrors.inc({ analyser: analyser.name });
        if (analyser.critical) throw err;
        logger.error({ err: String(err), analyser: analyser.name }, 'analyser failed on a batch');
      }
    }
  };

  return {
    async consume(batch: ChainBatch) {
      const chains = Array.isArray(batch?.chains) ? batch.chains : [];
      // Operations are templated with the learned path parameters before anything sees them.
      const learned = options.templater?.apply(chains) ?? [];
      await options.templater?.persist();
      // Later parts of stored traces are merged into them (read before the batch is written).
      const late: LateSplit = hasLateParts(batch.traceSummaries)
        ? await splitLateParts(store.chainReader, chains, batch.traceSummaries, windowMs)
        : { onTime: chains, merges: [], spans: { joined: 0, fragment: 0, missing: 0 } };
      stampReceived(chains, late.merges, now());
      // Storage errors reject: the pipeline counts and logs them.
      const written = await store.chainWriter.writeChains(late.onTime, batch.traceSummaries);
      stats.batches++;
      countWrite(written);
      for (const merge of late.merges) countWrite(await store.chainWriter.replaceTraceChains(merge.traceId, merge.chains));
      stats.lateMerges += late.merges.length;
      for (const outcome of LATE_OUTCOMES) if (late.spans[outcome] > 0) lateSpans.inc({ outcome }, late.spans[outcome]);
      const analysed = written.rejected ? late.onTime.filter((c) => store.chainWriter.accepts(c)) : written.chains > 0 ? late.onTime : [];
      if (learned.length > 0) await announceParameters(learned);
      if (analysed.length > 0 || late.merges.length > 0) await runAnalysers(analysed, late.merges);
      const spans = Number.isFinite(batch.spans) && batch.spans > 0 ? batch.spans : 0;
      stats.spans += spans;
      spansProcessed.inc(spans);
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

/**
 * Stamps the wall-clock time the batch was received on its chains (handed over to the engine with
 * the batch) and on the merged chains of identities a late part changed; a merged chain the part
 * did not change keeps the time it was first received.
 */
function stampReceived(chains: readonly Chain[], merges: readonly LateMerge[], receivedMs: number): void {
  for (const chain of chains) chain.receivedMs = receivedMs;
  for (const merge of merges) {
    const before = new Map(merge.before.map((c) => [c.identity, c.receivedMs]));
    for (const chain of merge.chains) chain.receivedMs = (merge.identities.has(chain.identity) ? undefined : before.get(chain.identity)) ?? receivedMs;
  }
}

export type { LateMerge };
