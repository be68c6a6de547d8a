import { applyPathParameters, type Chain, type LearnedPathParameter } from '@conduct/processor';
import type { Alert } from '../alerts/model.js';
import type { LateMerge } from '../engine/late.js';
import type { AnalyseResult, CheckpointSink, Detection, LateChange } from './detection.js';

/** The part of the engine's analysis context detection needs: announcing alerts, committing with the chains. */
export interface AlertEmitter {
  emit(alert: Alert, event?: 'alert' | 'feedback'): void;
  /** Absent: detection writes its checkpoint to the state itself. */
  commit?: CheckpointSink;
  /** Where each batch's chains end when several batches are analysed together (AnalysisContext.batchEnds). */
  batchEnds?: readonly number[];
}

/**
 * Adapts the detection service to the engine's analyser hook: analyses each stored batch and
 * announces new alerts and counted repeats to the engine's `onAlert` listeners.
 */
export function createDetectionAnalyser(detection: Detection): {
  name: string;
  transactional: true;
  analyse(chains: readonly Chain[], ctx: AlertEmitter): Promise<void>;
  analyseLate(merges: readonly LateMerge[], ctx: AlertEmitter): Promise<void>;
  pathParametersLearned(parameters: readonly LearnedPathParameter[]): Promise<void>;
} {
  return {
    name: 'detection',
    // Learned baselines, alerts and held chains are stored in one transaction with the chains.
    transactional: true,
    async analyse(chains, ctx) {
      announce(await detection.analyse(chains, ctx.commit, ctx.batchEnds), ctx);
    },
    async analyseLate(merges, ctx) {
      announce(await detection.analyseLate(merges.flatMap(changesOf), ctx.commit), ctx);
    },
    // The literal operations learned before a position became a parameter take the template's name.
    async pathParametersLearned(parameters) {
      await detection.renameOperations((op, peer) => applyPathParameters(parameters, op, peer));
    },
  };
}

/** Announces what an analysis raised, repeated or superseded. */
export function announce(result: AnalyseResult, ctx: AlertEmitter): void {
  for (const alert of result.alerts) ctx.emit(alert, 'alert');
  for (const alert of result.updated) ctx.emit(alert, 'alert');
  // A status change, as a verdict is: sinks update or resolve what they announced.
  for (const alert of result.superseded) ctx.emit(alert, 'feedback');
}

/** What a merge changed, identity by identity. */
export function changesOf(merge: LateMerge): LateChange[] {
  const changed = new Set(merge.added.map((c) => c.spanId));
  const replaced = new Set(merge.removed.map((c) => c.spanId));
  return [...merge.identities].map((identity) => ({
    before: merge.before.find((c) => c.identity === identity),
    after: merge.chains.find((c) => c.identity === identity),
    changed,
    replaced,
  }));
}
