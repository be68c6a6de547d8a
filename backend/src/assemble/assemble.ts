import type { Registry } from 'prom-client';
import { silentLogger, type Logger } from '@conduct/processor';
import { createSinks, type Sinks, type SinksOptions } from '../alerts/sinks/index.js';
import { registerStateMetrics } from '../alerts/state-metrics.js';
import { createClusterNode, partitionOf, type ClusterNode } from '../cluster/index.js';
import type { Config } from '../config/index.js';
import { createDetection, createDetectionAnalyser, type Detection } from '../detect/index.js';
import { registerDetectionMetrics } from '../detect/metrics.js';
import { createEngine, createOperationTemplater, type Engine } from '../engine/index.js';
import { openStorage as openDefaultStorage, type OpenStorage, type StorageBackend } from '../store/index.js';

export interface AssembleOptions {
  registry: Registry;
  logger?: Logger;
  /** Deliver alerts to `alerts.sinks` (serve does; replay only when asked). */
  sinks: boolean;
  /** conduct's version, for the sinks. */
  version?: string;
  /** The forwarder of `forward[]`, for `finding-span` sinks with `via: forward`. */
  forwarder?: SinksOptions['forwarder'];
  /** Detection's `persistIntervalMs` (0, the default: learned baselines written with every batch). */
  persistIntervalMs?: number;
  /** Opens the storage backend; `openStorage` (from `storage.*`) by default. */
  openStorage?: OpenStorage;
  /**
   * Join the cluster of the database when the backend can hold one (PostgreSQL): stage 2
   * (learning, detection, alerts) then runs on the owner of each identity's partition, and this
   * instance hands its chains off (serve does; replay analyses on its own).
   */
  cluster?: boolean;
  /**
   * Receives the ids of the traces stored within `stitching.lateTraceWindow` before the start once
   * the engine has read them (EngineOptions.recentTraces' `onEarlierTraces`), for the pipeline's
   * stitcher; never called in a cluster or when the store cannot tell.
   */
  onEarlierTraces?: (chunks: Uint8Array[]) => void;
}

/** The backend's core, assembled: storage, engine (storing, then detecting), sinks. */
export interface Assembled {
  storage: StorageBackend;
  engine: Engine;
  detection: Detection;
  /** Undefined unless `sinks` was asked for. */
  sinks?: Sinks;
  /**
   * This instance's part in the cluster, when `cluster` was asked for and the backend holds one:
   * call its `join` once the API listens. `detection` then only reads alerts (its baselines are
   * the owners').
   */
  cluster?: ClusterNode;
  /** Stops the sinks (draining), writes what detection holds back, closes the storage. Safe twice. */
  stop(): Promise<void>;
}

/**
 * Opens the storage the config selects and builds on it the engine with detection as its
 * analyser, the detection-state gauges, and (when asked) the alert sinks listening to the engine.
 * `serve` and `replay` both start from here. On a failure what was opened is closed again.
 */
export async function assembleBackend(config: Config, options: AssembleOptions): Promise<Assembled> {
  const { registry } = options;
  const logger = options.logger ?? silentLogger;
  const storage = await openNamed(options.openStorage ?? openDefaultStorage, config, logger);
  let sinks: Sinks | undefined;
  try {
    const templater = await createOperationTemplater({ store: storage.templates, registry, logger });
    // Parts the pipeline marks `maybe` are looked up only when this engine may have stored their
    // trace. Not in a cluster: another instance may have stored it, so every `maybe` is looked up.
    const inCluster = options.cluster === true && storage.cluster !== undefined;
    const recentTraces = inCluster
      ? undefined
      : { earlierPartsStored: (await storage.chainReader.newestEventMs()) > 0, ...(options.onEarlierTraces ? { onEarlierTraces: options.onEarlierTraces } : {}) };
    const engine = createEngine({ store: storage, registry, logger, lateTraceWindowMs: config.stitching.lateTraceWindow, templater, ...(recentTraces ? { recentTraces } : {}) });
    // Deliveries go through the store's outbox: detection enqueues them with the alerts it writes.
    sinks = options.sinks
      ? createSinks(config.alerts.sinks, {
          registry,
          logger,
          outbox: storage.outbox,
          deliveryRetentionMs: config.alerts.deliveryRetention,
          ...(options.version ? { version: options.version } : {}),
          ...(options.forwarder ? { forwarder: options.forwarder } : {}),
        })
      : undefined;
    const { partitions } = config.cluster;
    // Detection's own counters on /metrics, summed over every detection built here.
    const detectionMetrics = registerDetectionMetrics({ registry, gauges: !inCluster });
    const detectionOptions = {
      learning: config.learning,
      policies: config.policies,
      traceUrl: config.alerts.traceUrl,
      limits: config.limits,
      humans: config.detection.humans,
      releaseGraceMs: config.detection.releaseGrace,
      // Baselines are stored in their identity's partition, ready for a cluster.
      groupOf: (identity: string) => partitionOf(identity, partitions),
      ...(sinks ? { deliveries: sinks } : {}),
    };
    const cluster =
      options.cluster && storage.cluster
        ? createClusterNode({
            store: storage.cluster,
            config: config.cluster,
            state: storage.detection,
            // The owner commits every analysis with its partition's offset (no held-back baselines).
            createDetection: async (state, owned) =>
              detectionMetrics.track(
                await createDetection({ ...detectionOptions, state, scope: { groups: owned }, persistIntervalMs: 0, logger: owned.length > 1 ? logger : silentLogger }),
              ),
            emitter: engine,
            registry,
            logger,
          })
        : undefined;
    // On a cluster this detection loads no baseline: it answers the alert routes.
    const detection = detectionMetrics.track(
      await createDetection({
        ...detectionOptions,
        state: storage.detection,
        logger,
        persistIntervalMs: cluster ? 0 : (options.persistIntervalMs ?? 0),
        ...(cluster ? { scope: { groups: [] } } : {}),
      }),
    );
    engine.addAnalyser(cluster ? cluster.handOff : createDetectionAnalyser(detection));
    registerStateMetrics({ registry, state: storage.detection, learning: config.learning });
    // An announced alert is in the outbox already: the sinks look now.
    const delivering = sinks;
    if (delivering) engine.onAlert((alert, event) => delivering.deliver(alert, event));

    let stopping: Promise<void> | undefined;
    const stop = async () => {
      try {
        await cluster?.stop();
        await sinks?.stop();
        await detection.flush();
      } finally {
        await storage.close();
      }
    };
    return { storage, engine, detection, ...(sinks ? { sinks } : {}), ...(cluster ? { cluster } : {}), stop: () => (stopping ??= stop()) };
  } catch (err) {
    await sinks?.stop();
    await storage.close();
    throw err;
  }
}

/** Opens the storage; a failure names the config key and where (a driver's own message names neither). */
async function openNamed(open: OpenStorage, config: Config, logger: Logger): Promise<StorageBackend> {
  try {
    return await open(config.storage, { logger });
  } catch (err) {
    throw new Error(`storage.path: cannot open the database ${config.storage.path}: ${(err as Error).message}`, { cause: err });
  }
}
