import { Counter, Gauge, type Registry } from 'prom-client';
import {
  createPathParameterLearner,
  silentLogger,
  type Chain,
  type LearnedPathParameter,
  type Logger,
  type PathParameterOptions,
} from '@conduct/processor';
import type { OperationTemplateStore } from '../store/index.js';

/**
 * Learned path parameters applied by the engine: before a batch is stored and analysed, every call
 * whose operation came from a raw URL path (`Call.pathOperation`: no `http.route`) is templated
 * with the positions learned so far (the processor's path-params.ts), and the positions the batch
 * taught are written to the store, so that a restart templates as before.
 */
export interface OperationTemplater {
  /** Templates the calls of the chains in place; returns the positions they taught. */
  apply(chains: readonly Chain[]): LearnedPathParameter[];
  /**
   * Writes the positions taught so far. A failed write is logged and tried again with the next
   * batch (the positions keep templating meanwhile); it never fails the batch.
   */
  persist(): Promise<void>;
}

export interface OperationTemplaterOptions extends PathParameterOptions {
  store: OperationTemplateStore;
  registry: Registry;
  logger?: Logger;
}

/** Loads the learned positions from the store and registers the `conduct_operation_*` metrics. */
export async function createOperationTemplater(options: OperationTemplaterOptions): Promise<OperationTemplater> {
  const { store, registry } = options;
  const logger = options.logger ?? silentLogger;
  const learner = createPathParameterLearner(options);
  const restored = await store.loadPathParameters();
  learner.restore(restored);
  logger.info({ parameters: learner.stats().parameters }, 'learned path parameters loaded');

  new Gauge({
    name: 'conduct_operation_path_parameters',
    help: 'Path positions learned to be parameters of operation templates.',
    registers: [registry],
    collect() {
      this.set(learner.stats().parameters);
    },
  });
  new Gauge({
    name: 'conduct_operation_path_groups',
    help: 'Path positions whose distinct values are being counted (bounded).',
    registers: [registry],
    collect() {
      this.set(learner.stats().groups);
    },
  });
  const evicted = new Counter({
    name: 'conduct_operation_path_groups_evicted_total',
    help: 'Counted path positions forgotten (least recently used) to stay within the bound.',
    registers: [registry],
  });
  const refused = new Counter({
    name: 'conduct_operation_path_parameters_refused_total',
    help: 'Path positions that passed the threshold while the most learned positions were kept already.',
    registers: [registry],
  });
  const writeErrors = new Counter({
    name: 'conduct_operation_path_parameter_write_errors_total',
    help: 'Failed writes of learned path parameters (tried again with the next batch).',
    registers: [registry],
  });

  let seen = { evictedGroups: 0, refusedParameters: 0 };
  let unwritten: LearnedPathParameter[] = [];
  return {
    apply(chains) {
      for (const chain of chains) {
        for (const call of chain.calls) {
          if (call.pathOperation === true) call.operation = learner.template(call.peer, call.operation, call.startMs);
        }
      }
      const stats = learner.stats();
      if (stats.evictedGroups > seen.evictedGroups) evicted.inc(stats.evictedGroups - seen.evictedGroups);
      if (stats.refusedParameters > seen.refusedParameters) refused.inc(stats.refusedParameters - seen.refusedParameters);
      seen = { evictedGroups: stats.evictedGroups, refusedParameters: stats.refusedParameters };
      const learned = learner.takeLearned();
      if (learned.length > 0) unwritten = [...unwritten, ...learned];
      return learned;
    },
    async persist() {
      if (unwritten.length === 0) return;
      const batch = unwritten;
      unwritten = [];
      try {
        await store.savePathParameters(batch);
      } catch (err) {
        writeErrors.inc();
        unwritten = [...batch, ...unwritten];
        logger.warn({ err: String(err), parameters: batch.length }, 'learned path parameters not written; trying again with the next batch');
      }
    },
  };
}
