import type { Chain, Logger, TraceSummary } from '@conduct/processor';
import { silentLogger } from '@conduct/processor';
import type { Alert } from '../alerts/model.js';
import type { AlertRecord, BaselineDelta, BaselineEntryRecord, BaselineRecord, OutboxEvent, OutboxEventKind, StorageBackend } from './contracts.js';

/** Records per checkpoint or chain batch while copying. */
const COPY_BATCH = 500;
/** Upper bound on what one list read asks for (the reads take a limit). */
const ALL = 2 ** 31 - 1;

export interface CopyOptions {
  /** Also copy the stored chains and their trace summaries (identities and edges are rebuilt from them). Default true. */
  chains?: boolean;
  logger?: Logger;
}

export interface CopyResult {
  baselines: number;
  baselineEntries: number;
  suppressions: number;
  alerts: number;
  heldChains: number;
  /** Deliveries still pending in the source, enqueued again in the target (each under a new sequence number). */
  pendingDeliveries: number;
  chains: number;
  traces: number;
  /** Learned path parameters of operation templates. */
  pathParameters: number;
}

/**
 * Copies one backend's contents into another through the storage contracts only: learned
 * baselines (with their groups and entries), suppressions, alerts with their held chains, the
 * learned path parameters of operation templates, and
 * (unless `chains: false`) the stored chains with their trace summaries, oldest first, from which
 * the target rebuilds identities and observed edges. The target must hold no identity, baseline
 * or alert, so that nothing is counted twice. What `from` no longer holds (chains past retention)
 * is not counted in the target's identity totals.
 */
export async function copyStorage(from: StorageBackend, to: StorageBackend, options: CopyOptions = {}): Promise<CopyResult> {
  const logger = options.logger ?? silentLogger;
  await refuseNonEmpty(to);
  const result: CopyResult = { baselines: 0, baselineEntries: 0, suppressions: 0, alerts: 0, heldChains: 0, pendingDeliveries: 0, chains: 0, traces: 0, pathParameters: 0 };

  // Baselines: the visitor streams every record before its entries.
  const baselines = new Map<string, { baseline: BaselineRecord; entries: BaselineEntryRecord[] }>();
  await from.detection.loadBaselines({
    baseline: (record) => baselines.set(record.identity, { baseline: record, entries: [] }),
    entry: (identity, entry) => baselines.get(identity)?.entries.push(entry),
  });
  let deltas: BaselineDelta[] = [];
  let rows = 0;
  const flushBaselines = async () => {
    if (deltas.length) await to.detection.checkpoint({ baselines: deltas });
    deltas = [];
    rows = 0;
  };
  for (const { baseline, entries } of baselines.values()) {
    deltas.push({ baseline, entries, removed: [] });
    rows += 1 + entries.length;
    result.baselines++;
    result.baselineEntries += entries.length;
    if (rows >= COPY_BATCH * 10) await flushBaselines();
  }
  await flushBaselines();
  baselines.clear();

  const suppressions = await from.detection.loadSuppressions();
  for (let i = 0; i < suppressions.length; i += COPY_BATCH) await to.detection.checkpoint({ suppressions: suppressions.slice(i, i + COPY_BATCH) });
  result.suppressions = suppressions.length;

  // Alerts oldest first (a later repeat of a key stays the later row), each with its held chains.
  const alerts = (await from.detection.listAlerts({ limit: ALL })).reverse();
  for (let i = 0; i < alerts.length; i += COPY_BATCH) {
    const slice = alerts.slice(i, i + COPY_BATCH);
    const held = (await Promise.all(slice.map((a) => from.detection.heldByAlert(a.id)))).flat();
    // Delivery sequences carry over (delivery ids never repeat); what was still pending is enqueued again.
    const records = await Promise.all(slice.map(async (a): Promise<AlertRecord> => ({ ...toRecord(a), deliverySeq: await from.outbox.sequence(a.id) })));
    const outbox = (await Promise.all(slice.map((a) => pendingEvents(from, a)))).flat();
    await to.detection.checkpoint({ alerts: records, held, outbox });
    result.alerts += slice.length;
    result.heldChains += held.length;
    result.pendingDeliveries += outbox.reduce((n, e) => n + e.sinks.length, 0);
  }

  const parameters = await from.templates.loadPathParameters();
  for (let i = 0; i < parameters.length; i += COPY_BATCH) await to.templates.savePathParameters(parameters.slice(i, i + COPY_BATCH));
  result.pathParameters = parameters.length;

  if (options.chains !== false) {
    const copied = await copyChains(from, to);
    result.chains = copied.chains;
    result.traces = copied.traces;
  }
  logger.info({ ...result }, 'storage copied');
  return result;
}

/** The dedup key detection gives an alert: identity, detector and the sorted finding keys. */
export function dedupKeyOf(alert: Alert): string {
  const keys = (alert.evidence?.keys as unknown[] | undefined) ?? [];
  return [alert.identity, alert.detector, ...keys.map(String).sort()].join('\u0000');
}

/** Deliveries of an alert still pending in `from`, as outbox events (oldest first; the alert as it is now). */
async function pendingEvents(from: StorageBackend, alert: Alert): Promise<OutboxEvent[]> {
  const pending = (await from.outbox.deliveries(alert.id, ALL)).filter((d) => d.state === 'pending').reverse();
  const bySeq = new Map<number, { event: OutboxEventKind; sinks: string[]; atMs: number }>();
  for (const d of pending) {
    const e = bySeq.get(d.seq) ?? { event: d.event, sinks: [], atMs: d.createdMs };
    e.sinks.push(d.sink);
    bySeq.set(d.seq, e);
  }
  return [...bySeq.values()].map((e) => ({ alert, ...e }));
}

function toRecord(alert: Alert): AlertRecord {
  return { alert, dedupKey: dedupKeyOf(alert) };
}

async function refuseNonEmpty(to: StorageBackend): Promise<void> {
  const counts = await to.identities.counts();
  const baselines = await to.detection.baselineCounts({ minCalls: 0, periodMs: 0 });
  const alerts = await to.detection.listAlerts({ limit: 1 });
  if (counts.identities > 0 || baselines.total > 0 || alerts.length > 0) {
    throw new Error(
      `the target already holds data (${counts.identities} identities, ${baselines.total} baselines, ${alerts.length ? 'some' : 'no'} alerts): copy into an empty database`,
    );
  }
}

/** Every identity's chains, oldest end first, in batches with the summaries of their traces (each once). */
async function copyChains(from: StorageBackend, to: StorageBackend): Promise<{ chains: number; traces: number }> {
  const identities = await from.identities.listIdentities(ALL);
  const seenTraces = new Set<string>();
  let chains = 0;
  let summariesWritten = 0;
  for (const identity of identities) {
    const all = (await from.chainReader.recentChains(identity.id, { limit: ALL })).reverse();
    for (let i = 0; i < all.length; i += COPY_BATCH) {
      const batch: Chain[] = all.slice(i, i + COPY_BATCH);
      const summaries: TraceSummary[] = [];
      for (const c of batch) {
        if (seenTraces.has(c.traceId)) continue;
        seenTraces.add(c.traceId);
        const summary = await from.chainReader.traceSummary(c.traceId);
        if (summary) summaries.push(summary);
      }
      const written = await to.chainWriter.writeChains(batch, summaries);
      chains += written.chains;
      summariesWritten += summaries.length;
    }
  }
  return { chains, traces: summariesWritten };
}
