import type { Chain, LearnedPathParameter } from '@conduct/processor';
import { changesOf, type LateChange } from '../detect/index.js';
import type { Analyser, LateMerge } from '../engine/index.js';
import type { ClusterStore, HandOffItem } from '../store/index.js';
import { partitionOf } from './partition.js';

/**
 * Kinds of hand-off items: stored chains, what later parts of traces changed, operators' verdicts,
 * and path parameters just learned (every owner renames its baselines' operations with them).
 */
export const HANDOFF_KINDS = ['chains', 'late', 'feedback', 'parameters'] as const;

/** A verdict on its way to the owner of the alert's identity. */
export interface FeedbackItem {
  alertId: string;
  verdict: string;
  /** The request's own id (a verdict given twice is two items). */
  requestId: string;
}

/** A LateChange as JSON (its sets as arrays). */
export interface SerialLateChange {
  before?: Chain;
  after?: Chain;
  changed: string[];
  replaced: string[];
}

export function encodeLateChange(change: LateChange): SerialLateChange {
  return {
    ...(change.before ? { before: change.before } : {}),
    ...(change.after ? { after: change.after } : {}),
    changed: [...change.changed],
    replaced: [...change.replaced],
  };
}

export function decodeLateChange(s: SerialLateChange): LateChange {
  return { before: s.before, after: s.after, changed: new Set(s.changed), replaced: new Set(s.replaced) };
}

/** The identity a late change concerns. */
const identityOf = (change: LateChange) => change.after?.identity ?? change.before?.identity;

/**
 * Stage 1's end: an engine analyser that hands every chain, and every change a later part of a
 * trace made, to the owner of its identity's partition through the store. It is transactional:
 * the items are committed in the transaction that stores the chains, so a crash between the two
 * cannot leave chains stored that no owner ever gets (a journal replay finds them stored and adds
 * nothing). It is critical: when the commit fails, the batch fails and the journal keeps its
 * requests for a replay.
 */
export function createHandOffAnalyser(store: ClusterStore, instanceId: string, partitions: number): Analyser {
  return {
    name: 'cluster-handoff',
    critical: true,
    transactional: true,
    async analyse(chains, ctx) {
      const byPartition = new Map<number, Chain[]>();
      for (const chain of chains) {
        const p = partitionOf(chain.identity, partitions);
        const list = byPartition.get(p);
        if (list) list.push(chain);
        else byPartition.set(p, [chain]);
      }
      const items: HandOffItem[] = [...byPartition].map(([partition, list]) => ({ partition, kind: 'chains', body: list }));
      await ctx.commit(undefined, { items, fromInstance: instanceId });
    },
    async analyseLate(merges: readonly LateMerge[], ctx) {
      const byPartition = new Map<number, SerialLateChange[]>();
      for (const change of merges.flatMap(changesOf)) {
        const identity = identityOf(change);
        if (identity === undefined) continue;
        const p = partitionOf(identity, partitions);
        const list = byPartition.get(p) ?? [];
        list.push(encodeLateChange(change));
        byPartition.set(p, list);
      }
      const items = [...byPartition].map(([partition, list]): HandOffItem => ({ partition, kind: 'late', body: list }));
      await ctx.commit(undefined, { items, fromInstance: instanceId });
    },
    async pathParametersLearned(parameters: readonly LearnedPathParameter[]) {
      // Every partition's owner renames, in order with the chains handed to it before.
      const items = Array.from({ length: partitions }, (_, partition): HandOffItem => ({ partition, kind: 'parameters', body: parameters }));
      await store.handOff(items, instanceId);
    },
  };
}
