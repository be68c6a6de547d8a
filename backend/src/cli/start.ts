import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import {
  createForwarder,
  createGrpcReceiver,
  createHttpReceiver,
  createK8sAuditReceiver,
  createLiveHeapReader,
  limitHeapGrowth,
  silentLogger,
  type Logger,
  type Receiver,
} from '@conduct/processor';
import { assembleBackend } from '../assemble/index.js';
import { deliveryView, MAX_DELIVERIES_SHOWN } from '../alerts/deliveries.js';
import { ConfigError, configSummary, type Config } from '../config/index.js';
import { FlushIncompleteError, singleInstanceView, type ClusterNode } from '../cluster/index.js';
import { MAX_ALERTS_PER_QUERY, type Detection } from '../detect/index.js';
import { createApi, HttpError, type AlertsProvider, type ApiServer, type IdentityInsights, type ReadinessCheck } from '../api/index.js';
import type { Engine } from '../engine/index.js';
import { startRetention, type LegacyJournal, type StorageBackend } from '../store/index.js';
import { createJournal } from '../journal/index.js';
import { createIntakeThread } from '../intake/index.js';
import { lockStorage } from '../store/sqlite/lock.js';
import { splitEndpoint } from './endpoint.js';
import { checkAddressesFree } from './preflight.js';

/** How often chains older than `storage.retention` and closed alerts older than `storage.alertRetention` (event time) are deleted. */
export const RETENTION_SWEEP_MS = 60_000;

/** conduct's version (the backend package's). */
export const CONDUCT_VERSION: string = (() => {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
})();

export interface StartOptions {
  logger?: Logger;
  /** Built UI to serve at `/`; the backend's dist/ui by default. */
  uiDir?: string;
  /** How often retention sweeps (ms); RETENTION_SWEEP_MS by default (tests shorten it). */
  retentionIntervalMs?: number;
}

export interface FlushOptions {
  /** Also wait this long at most for the alert sinks' queues to empty (0, the default: do not wait). */
  sinksTimeoutMs?: number;
}

/** A running conduct. Addresses are `host:port` as bound ('' for a disabled receiver). */
export interface RunningConduct {
  grpcAddress: string;
  httpAddress: string;
  /** The Kubernetes audit webhook receiver's address, '' when it is off. */
  k8sAuditAddress: string;
  apiAddress: string;
  dbPath: string;
  storage: StorageBackend;
  engine: Engine;
  registry: Registry;
  /**
   * Completes every pending trace and waits until it is stored and analysed. With `sinksTimeoutMs`,
   * then also waits (up to that long) until the alert sinks have delivered or given up what is
   * queued; a hanging sink only costs that bound.
   */
  flush(options?: FlushOptions): Promise<void>;
  /** Stops receivers, flushes the pipeline, stops sinks and forwarding, closes the API and the store. Safe twice. */
  stop(): Promise<void>;
}

/** What readiness and liveness read of a running conduct. */
interface RunState {
  phase: 'starting' | 'running' | 'stopping';
  journalOpen: boolean;
  /** Set when a part failed for good (the pipeline worker died): neither ready nor alive. */
  failure?: string;
}

/** `/readyz`: started and not stopping, store reachable, journal open, pipeline worker alive. */
function readinessChecks(state: RunState, storage: StorageBackend): ReadinessCheck[] {
  return [
    { name: 'started', check: () => (state.phase === 'running' ? undefined : state.phase) },
    { name: 'store', check: async () => ((await storage.ready()) ? undefined : 'not open or unreachable') },
    { name: 'journal', check: () => (state.journalOpen ? undefined : 'closed') },
    { name: 'pipeline', check: () => state.failure },
  ];
}

/** Identities whose cluster view one instance keeps ready for the API. */
const MAX_PREPARED_IDENTITIES = 10_000;

/** The API's learned view of identities from one detection (one instance owns every identity). */
function detectionInsights(detectionOf: (id: string) => Detection | undefined): IdentityInsights {
  return {
    status: (id) => detectionOf(id)?.identity(id)?.status,
    learning(id) {
      const d = detectionOf(id)?.identity(id);
      if (!d) return undefined;
      return {
        progress: d.progress,
        learnedCalls: d.calls,
        observedMs: d.observedMs,
        ...(d.enforcingSince ? { enforcingSince: d.enforcingSince } : {}),
        compromised: d.compromised,
      };
    },
    baseline: (id) => detectionOf(id)?.baseline(id),
    graph: async (id) => detectionOf(id)?.graph(id),
  };
}

/** The same view on a cluster: each identity's partition loaded (prepare) before it is read. */
function clusterInsights(source: ClusterNode['insights']): IdentityInsights {
  const loaded = new Map<string, Detection | undefined>();
  return {
    ...detectionInsights((id) => loaded.get(id)),
    async prepare(ids) {
      for (const id of ids) {
        loaded.delete(id);
        loaded.set(id, await source.detectionOf(id));
      }
      // Bounded: the identities asked for last are kept.
      for (const id of loaded.keys()) {
        if (loaded.size <= MAX_PREPARED_IDENTITIES) break;
        loaded.delete(id);
      }
    },
    async graph(id) {
      return (await source.detectionOf(id))?.graph(id);
    },
  };
}

/** `conduct_build_info{version, node} 1`: which conduct and which Node a scrape came from. */
function registerBuildInfo(registry: Registry): void {
  new Gauge({
    name: 'conduct_build_info',
    help: 'Always 1; the labels name the conduct version and the Node.js version running it.',
    labelNames: ['version', 'node'],
    registers: [registry],
  }).set({ version: CONDUCT_VERSION, node: process.versions.node }, 1);
}

function readPem(path: string, key: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError(`${key}: cannot read ${path}: ${(err as Error).message}`);
  }
}

function readApiTls(tls: NonNullable<Config['api']['tls']>) {
  return {
    cert: readPem(tls.cert, 'api.tls.cert'),
    key: readPem(tls.key, 'api.tls.key'),
    ...(tls.ca ? { ca: readPem(tls.ca, 'api.tls.ca') } : {}),
    clientAuth: tls.clientAuth,
  };
}

/**
 * Moves the requests of a journal an older version kept in the database into the journal's
 * segment files, where the pipeline thread's journal finds and replays them.
 */
async function adoptLegacyJournal(dir: string, legacy: LegacyJournal, logger: Logger): Promise<void> {
  // Its metrics are not served: the thread's journal registers the same ones.
  const journal = createJournal({ dir, registry: new Registry(), logger });
  try {
    await journal.adoptLegacy(legacy);
  } finally {
    await journal.stop();
  }
}

/** A listen that failed, as an error naming the key and the address. */
async function naming<T>(key: string, endpoint: string, listening: Promise<T>): Promise<T> {
  try {
    return await listening;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const code = e.code ?? /\b(EADDRINUSE|EADDRNOTAVAIL|EACCES|ENOTFOUND)\b/.exec(e.message)?.[1];
    if (code === undefined) throw err; // not a listen failure (a receiver's TLS files, ...): as it is
    const why = code === 'EADDRINUSE' ? 'address already in use (EADDRINUSE)' : e.message;
    throw new Error(`${key}: cannot listen on ${endpoint}: ${why}`, { cause: err });
  }
}

function endpointOf(value: string, key: string): { host: string; port: number } {
  const parts = splitEndpoint(value);
  if (!parts) throw new Error(`${key}: "${value}" is not HOST:PORT`);
  return parts;
}

/**
 * Starts everything in one process, in order: store, engine (with detection and alert sinks),
 * pipeline, API, receivers. Port 0 in an endpoint picks a free port. On a start-up failure what
 * was started is stopped again before the error is thrown.
 */
export async function startConduct(config: Config, options: StartOptions = {}): Promise<RunningConduct> {
  const logger = options.logger ?? silentLogger;
  const stops: Array<() => Promise<void> | void> = [];
  const stopAll = async () => {
    for (const stop of stops.reverse().splice(0)) {
      try {
        await stop();
      } catch (err) {
        logger.error({ err: String(err) }, 'error while stopping');
      }
    }
  };

  try {
    logger.debug({ config: configSummary(config) }, 'configuration');
    const apiEndpoint = endpointOf(config.api.endpoint, 'api.endpoint');
    const apiTls = config.api.tls ? readApiTls(config.api.tls) : undefined;
    // Before any file is created: a server that cannot listen leaves no database behind.
    await checkAddressesFree([
      { key: 'api.endpoint', endpoint: config.api.endpoint },
      { key: 'receivers.grpc.endpoint', endpoint: config.receivers.grpc.endpoint },
      { key: 'receivers.http.endpoint', endpoint: config.receivers.http.endpoint },
      { key: 'receivers.k8sAudit.endpoint', endpoint: config.receivers.k8sAudit.endpoint },
    ]);
    const registry = new Registry();
    collectDefaultMetrics({ register: registry });
    registerBuildInfo(registry);

    // One writer per storage path: taken before the database or its journal is opened, released last.
    if (config.storage.path !== ':memory:') {
      const lock = lockStorage(config.storage.path, { command: 'serve' });
      stops.push(() => lock.release());
    }

    // The forwarder stops after the sinks (stops run in reverse): finding spans sent `via: forward`
    // while the sinks drain still reach its queue or spool.
    const forwarder = createForwarder(config.forward, { registry, logger });
    forwarder.start();
    stops.push(() => forwarder.stop());

    // Storage, engine, detection and sinks; they stop (sinks drained, detection flushed, storage
    // closed) after the pipeline has drained (stops run in reverse).
    // The ids of the traces stored within the window before this start, once the engine has read
    // them: the pipeline thread's stitcher then stops marking every new trace `maybe`. They may be
    // read before the thread exists.
    let earlierTraces: Uint8Array[] | undefined;
    let toPipeline: ((chunks: Uint8Array[]) => void) | undefined;
    const core = await assembleBackend(config, {
      registry,
      logger,
      sinks: true,
      version: CONDUCT_VERSION,
      forwarder,
      cluster: true,
      onEarlierTraces: (chunks) => (toPipeline ? toPipeline(chunks) : (earlierTraces = chunks)),
    });
    stops.push(() => core.stop());
    const { storage, engine, detection, cluster } = core;
    const sinks = core.sinks!;

    // The API closes after the pipeline has flushed (stops run in reverse order of this list).
    let api: ApiServer | undefined;
    stops.push(() => api?.stop());

    // Accepted requests are journaled before they are acknowledged (docs/reliability.md).
    // Decoding, stitching and derivation run on their own thread (processor/src/pipeline/thread.ts),
    // and so do the journal and the OTLP receivers (intake/thread.ts): a request is read, decoded,
    // journaled and answered there without waiting for this thread, which stores and analyses.
    // The memory limit covers both heaps.
    const state: RunState = { phase: 'starting', journalOpen: false };
    // Segment files beside the database (not `<path>-journal`: SQLite's own name), in a
    // temporary directory for an in-memory store.
    const journalDir = config.storage.path === ':memory:' ? undefined : `${config.storage.path}.journal`;
    // A journal an older version left in the database is moved into them before the thread opens them.
    if (storage.legacyJournal && journalDir !== undefined) await adoptLegacyJournal(journalDir, storage.legacyJournal, logger);
    // Both threads' old generations grow to about twice their live data, not V8's up to 4 (see
    // limitHeapGrowth): the peak RSS under sustained load is mostly that garbage otherwise.
    limitHeapGrowth();
    const mainHeap = createLiveHeapReader();
    stops.push(() => mainHeap.stop());
    // In-line mode: the receivers stay here, beside the forwarder they hand every request to.
    const receiversOnThread = !forwarder.enabled;
    const pipeline = createIntakeThread({
      rules: config.identity.rules,
      stitching: {
        idleMs: config.stitching.idle,
        latenessMs: config.stitching.lateness,
        maxPendingSpans: config.stitching.maxPendingSpans,
        lateTraceWindowMs: config.stitching.lateTraceWindow,
        // Parts of traces stored before this start are looked up in the store for one window.
        earlierPartsStored: (await storage.chainReader.newestEventMs()) > 0,
      },
      consumer: engine,
      logger,
      // Neither ready nor alive any more: a supervisor restarts conduct, and the journal replays.
      onFailure: (err) => (state.failure = `the pipeline worker stopped: ${err.message}`),
      intake: {
        journal: { ...(journalDir !== undefined ? { dir: journalDir } : {}), maxMemoryBytes: config.limits.maxMemoryBytes },
        // A database that is out of reach: new requests are refused (retryable) while what was
        // acknowledged waits in the journal and in the write that retries.
        storageGate: storage.availability !== undefined,
        receivers: receiversOnThread ? { grpc: config.receivers.grpc, http: config.receivers.http } : {},
      },
      ...(storage.availability ? { availability: storage.availability } : {}),
      mainHeap: () => mainHeap.read(),
    });
    // Stops the receivers on the thread, drains the pipeline into the store, then closes the journal.
    stops.push(() => {
      state.journalOpen = false;
      return pipeline.stop();
    });
    toPipeline = (chunks) => {
      if (chunks.length === 0) pipeline.earlierTraces(new Uint8Array(0), true);
      chunks.forEach((ids, k) => pipeline.earlierTraces(ids, k === chunks.length - 1));
    };
    if (earlierTraces) toPipeline(earlierTraces);
    earlierTraces = undefined;
    // Resolves once the journal has replayed what the last run acknowledged and did not store.
    await pipeline.started();
    state.journalOpen = true;
    // Requests taken on this thread (the Kubernetes audit receiver; the OTLP receivers in in-line
    // mode) go to the thread, which journals them and applies the storage gate as for its own.
    const ingest = pipeline;

    const retention = startRetention({
      store: storage,
      retentionMs: config.storage.retention,
      alertRetentionMs: config.storage.alertRetention,
      intervalMs: options.retentionIntervalMs ?? RETENTION_SWEEP_MS,
      registry,
      logger,
    });
    stops.push(() => retention.stop());

    const alerts: AlertsProvider = {
      list: (q) => detection.listAlerts(q),
      get: (id) => detection.getAlert(id),
      async feedback(id, verdict) {
        // On a cluster the owner of the identity applies it, in order with its chains, and announces it.
        if (cluster) return cluster.feedback(id, verdict);
        const alert = await detection.feedback(id, verdict);
        if (alert) engine.emit(alert, 'feedback');
        return alert;
      },
      deliveries: async (id) => (await storage.outbox.deliveries(id, MAX_DELIVERIES_SHOWN)).map(deliveryView),
      async deadDeliveries(id, action, which) {
        if (!(await detection.getAlert(id))) return undefined;
        const chosen = { alertId: id, ...which };
        const changed = action === 'retry' ? await storage.outbox.redrive(chosen, Date.now()) : await storage.outbox.discard(chosen, Date.now());
        if (action === 'retry' && changed.length > 0) sinks.wake();
        logger.info({ alert: id, action, deliveries: changed.map((k) => `${k.sink}/${k.seq}`) }, 'dead alert deliveries changed by an operator');
        return {
          changed: changed.map((k) => ({ sink: k.sink, seq: k.seq })),
          deliveries: (await storage.outbox.deliveries(id, MAX_DELIVERIES_SHOWN)).map(deliveryView),
        };
      },
      async openCounts() {
        const counts = new Map<string, number>();
        for (const a of await detection.listAlerts({ status: 'open', limit: MAX_ALERTS_PER_QUERY })) {
          counts.set(a.identity, (counts.get(a.identity) ?? 0) + 1);
        }
        return counts;
      },
    };
    const insights = cluster ? clusterInsights(cluster.insights) : detectionInsights(() => detection);
    const flush = async ({ timeoutMs }: { timeoutMs?: number }) => {
      if (cluster) {
        return cluster.flush(timeoutMs).catch((err: unknown) => {
          // Not caught up in time (a hung or dead instance, the database out of reach): the caller may retry.
          throw err instanceof FlushIncompleteError ? new HttpError(503, err.message) : err;
        });
      }
      await pipeline.flush();
      await detection.flush();
    };
    const readiness = readinessChecks(state, storage);
    if (cluster) readiness.push({ name: 'leases', check: () => cluster.unsettled() });
    let apiAddressOf = () => '';
    const clusterAnswer = cluster
      ? () => cluster.view()
      : async () => singleInstanceView(`${hostname()}-${process.pid}`, apiAddressOf(), config.cluster.partitions, Date.now());
    api = createApi({
      store: storage,
      registry,
      moreMetrics: () => pipeline.metricsJson(),
      flush,
      logger,
      token: config.api.token,
      readiness,
      failure: () => state.failure,
      alerts,
      insights,
      cluster: clusterAnswer,
      traceUrl: config.alerts.traceUrl,
      uiDir: options.uiDir,
      ...(apiTls ? { tls: apiTls } : {}),
    });
    const apiAddress = await naming('api.endpoint', config.api.endpoint, api.start(apiEndpoint.host, apiEndpoint.port));
    apiAddressOf = () => apiAddress;
    // Stage 2 of the partitions this instance wins, from their committed offsets.
    if (cluster) await cluster.join(apiAddress, () => pipeline.flush());

    const receiverDeps = { registry, logger, ...(forwarder.enabled ? { forwarder } : {}) };
    const startReceiver = async (key: string, endpoint: string, make: () => Receiver): Promise<string> => {
      if (endpoint === '') return '';
      const receiver = make();
      stops.push(() => receiver.stop());
      return naming(key, endpoint, receiver.start());
    };
    /** An OTLP receiver: on the pipeline thread (stopped with it), or here in in-line mode. */
    const startOtlpReceiver = (which: 'grpc' | 'http', make: () => Receiver): Promise<string> => {
      const key = `receivers.${which}.endpoint`;
      const endpoint = config.receivers[which].endpoint;
      if (!receiversOnThread) return startReceiver(key, endpoint, make);
      return endpoint === '' ? Promise.resolve('') : naming(key, endpoint, pipeline.listen(which));
    };
    const grpcAddress = await startOtlpReceiver('grpc', () => createGrpcReceiver(config.receivers.grpc, ingest, receiverDeps));
    const httpAddress = await startOtlpReceiver('http', () => createHttpReceiver(config.receivers.http, ingest, receiverDeps));
    const { chainWindow, ...k8sAudit } = config.receivers.k8sAudit;
    const k8sAuditAddress = await startReceiver('receivers.k8sAudit.endpoint', k8sAudit.endpoint, () =>
      createK8sAuditReceiver({ ...k8sAudit, chainWindowMs: chainWindow }, ingest, { registry, logger }),
    );
    // Runs first on stop: writes waiting for an unreachable database give up (their requests stay
    // in the journal for the next start) instead of holding the shutdown.
    stops.push(() => storage.availability?.stopRetrying());
    state.phase = 'running';

    logger.info(
      { grpc: grpcAddress || 'off', http: httpAddress || 'off', api: apiAddress, db: config.storage.path, version: CONDUCT_VERSION },
      `conduct listening: OTLP gRPC ${grpcAddress || 'off'}, OTLP HTTP ${httpAddress || 'off'}${k8sAuditAddress ? `, Kubernetes audit ${k8sAuditAddress}` : ''}, API ${apiAddress}, database ${config.storage.path}`,
    );

    let stopping: Promise<void> | undefined;
    return {
      grpcAddress,
      httpAddress,
      k8sAuditAddress,
      apiAddress,
      dbPath: config.storage.path,
      storage,
      engine,
      registry,
      async flush(options: FlushOptions = {}) {
        await flush({});
        const waitMs = options.sinksTimeoutMs ?? 0;
        if (waitMs <= 0) return;
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([sinks.flush(), new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs)))]);
        clearTimeout(timer);
      },
      stop() {
        stopping ??= (async () => {
          state.phase = 'stopping';
          logger.info({}, 'conduct stopping');
          await stopAll();
          logger.info({}, 'conduct stopped');
        })();
        return stopping;
      },
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
