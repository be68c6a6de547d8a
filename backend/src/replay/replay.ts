import { Registry } from 'prom-client';
import { createPipeline, silentLogger, type Clock, type Logger } from '@conduct/processor';
import { SEVERITY_RANK, type Alert } from '../alerts/model.js';
import { assembleBackend } from '../assemble/index.js';
import type { Config } from '../config/index.js';
import { lockStorage } from '../store/sqlite/lock.js';
import { isAuditFormat, readAuditRequests, type AuditCounts, type AuditFormat } from './read-audit.js';
import { readRequests, type RequestFormat, type RequestItem } from './read-requests.js';

/** Progress is reported at most this often (processing time). */
export const PROGRESS_INTERVAL_MS = 1_000;
/** Waits between two attempts when the pipeline answers that it is overloaded. */
export const OVERLOAD_WAIT_MS = 5;
/** Audit record ids printed per alert (the API and the UI have them all). */
export const MAX_PRINTED_RECORD_IDS = 5;
/** Most error messages kept in the summary (all are counted). */
export const MAX_REPORTED_ERRORS = 20;

/**
 * Processing time as the replay's stitcher sees it: never advancing, and later than any event
 * time, so traces complete by the event-time watermark (or the final flush), never by idleness,
 * and spans stamped long ago or far ahead move the watermark as they would live.
 */
const REPLAY_CLOCK: Clock = { now: () => Number.MAX_SAFE_INTEGER / 2 };

export interface ReplayProgress {
  file: string;
  files: number;
  fileIndex: number;
  requests: number;
  spans: number;
  bytes: number;
  alerts: number;
}

export interface ReplayOptions {
  /** The same configuration `serve` uses: storage, stitching, identity rules, learning, policies, traceUrl. */
  config: Config;
  files: readonly string[];
  logger?: Logger;
  /** Called at most every PROGRESS_INTERVAL_MS while reading, and at the end of each file once a replay has taken that long. */
  onProgress?: (p: ReplayProgress) => void;
  /** Deliver alerts to `alerts.sinks` as well (off by default: replays rarely should page anyone). */
  deliver?: boolean;
  /** Force a format instead of detecting it per file; `cloudtrail` and `k8s-audit` read audit logs (read-audit.ts). */
  format?: RequestFormat | AuditFormat;
}

export interface ReplaySummary {
  files: number;
  requests: number;
  spans: number;
  /** Entries that could not be read or decoded (counted, skipped). */
  badRequests: number;
  errors: string[];
  chains: number;
  calls: number;
  /** Alerts raised or repeated during the replay, latest state, most severe first. */
  alerts: Alert[];
  /** Audit formats only: records read, calls made of them, records that are no calls. */
  audit?: AuditCounts;
}

/**
 * Replays OTLP trace request files through the same pipeline as `serve` (identity rules,
 * stitching, store, learning, detection) in event time, then flushes and reports the alerts.
 * Writes to the configured database, which must not be in use: a `serve` or another replay on the
 * same file makes this throw StorageInUseError before anything is opened.
 */
export async function replayFiles(options: ReplayOptions): Promise<ReplaySummary> {
  const { config, files } = options;
  const logger = options.logger ?? silentLogger;
  const registry = new Registry();
  // Refused (StorageInUseError) while a serve or another replay holds the database.
  const lock = config.storage.path === ':memory:' ? undefined : lockStorage(config.storage.path, { command: 'replay' });
  // The same assembly as `serve`; sinks only when asked, and learned state written per batch.
  const core = await assembleBackend(config, { registry, logger, sinks: options.deliver === true }).catch((err: unknown) => {
    lock?.release();
    throw err;
  });
  const raised = new Map<string, Alert>();
  const summary: ReplaySummary = { files: files.length, requests: 0, spans: 0, badRequests: 0, errors: [], chains: 0, calls: 0, alerts: [] };
  try {
    const { engine, detection } = core;
    engine.onAlert((alert, event) => {
      if (event === 'alert') raised.set(alert.id, alert);
    });
    const pipeline = createPipeline({
      rules: config.identity.rules,
      stitching: {
        idleMs: config.stitching.idle,
        latenessMs: config.stitching.lateness,
        maxPendingSpans: config.stitching.maxPendingSpans,
        lateTraceWindowMs: config.stitching.lateTraceWindow,
        // Parts of traces stored by an earlier run or replay are looked up in the store.
        earlierPartsStored: (await core.storage.chainReader.newestEventMs()) > 0,
      },
      consumer: engine,
      registry,
      logger,
      clock: REPLAY_CLOCK,
      idleTimer: false,
    });

    let lastReport = Date.now();
    let reported = false;
    let bytes = 0;
    const report = (file: string, fileIndex: number) => {
      reported = true;
      options.onProgress?.({ file, files: files.length, fileIndex, requests: summary.requests, spans: summary.spans, bytes, alerts: raised.size });
    };

    const maxBytes = config.receivers.http.maxRequestBytes;
    let current = { file: files[0] ?? '', index: 0 };
    // Reports the end of each file once a replay has taken long enough to report at all.
    const onFile = (file: string, index: number) => {
      if (reported && index > current.index) report(current.file, current.index);
      current = { file, index };
    };
    const format = options.format;
    const audit: AuditCounts | undefined = isAuditFormat(format) ? { records: 0, calls: 0, skipped: 0 } : undefined;
    if (audit) summary.audit = audit;
    const items: AsyncIterable<RequestItem> = isAuditFormat(format)
      ? readAuditRequests(files, { format, maxBytes, windowMs: config.receivers.k8sAudit.chainWindow, counts: audit!, onFile })
      : requestsOf(files, { maxBytes, ...(format ? { format } : {}) }, onFile);
    for await (const item of items) {
      const file = current.file;
      const i = current.index;
      bytes += item.bytes;
      if (!item.ok) {
        summary.badRequests++;
        if (summary.errors.length < MAX_REPORTED_ERRORS) summary.errors.push(`${item.where}: ${item.error}`);
        continue;
      }
      for (;;) {
        const outcome = await pipeline.accept(item.data);
        if (outcome.ok) break;
        await new Promise((r) => setTimeout(r, OVERLOAD_WAIT_MS));
      }
      summary.requests++;
      summary.spans += item.data.spanCount;
      if (Date.now() - lastReport >= PROGRESS_INTERVAL_MS) {
        lastReport = Date.now();
        report(file, i);
      }
    }
    // Small inputs finish before the first report: no progress lines for them.
    if (reported) report(current.file, current.index);
    await pipeline.stop();
    const stats = engine.stats();
    summary.chains = stats.chains;
    summary.calls = stats.calls;
    const latest = await Promise.all([...raised.values()].map(async (a) => (await detection.getAlert(a.id)) ?? a));
    summary.alerts = latest
      .sort((a, b) => SEVERITY_RANK[b.severity] - SEVERITY_RANK[a.severity] || b.score - a.score || a.eventTime.localeCompare(b.eventTime));
    logger.info({ files: files.length, requests: summary.requests, spans: summary.spans, alerts: summary.alerts.length }, 'replay finished');
    return summary;
  } finally {
    try {
      await core.stop();
    } finally {
      lock?.release();
    }
  }
}

/** The requests of OTLP files, one file after the other; `onFile` is told when each starts. */
async function* requestsOf(
  files: readonly string[],
  options: { maxBytes: number; format?: RequestFormat },
  onFile: (file: string, index: number) => void,
): AsyncGenerator<RequestItem> {
  for (const [i, file] of files.entries()) {
    onFile(file, i);
    yield* readRequests(file, options);
  }
}

/** The summary as text: one line per alert (severity, detector, identity, title, trace link). */
export function formatReplaySummary(summary: ReplaySummary): string {
  const lines: string[] = [];
  const what = summary.audit
    ? `${summary.audit.records} audit record${summary.audit.records === 1 ? '' : 's'} (${summary.audit.calls} calls, ${summary.audit.skipped} not calls)`
    : `${summary.requests} request${summary.requests === 1 ? '' : 's'} (${summary.spans} spans)`;
  lines.push(
    `Replayed ${what} from ${summary.files} file${summary.files === 1 ? '' : 's'}: ${summary.chains} chains, ${summary.calls} calls, ${summary.alerts.length} alert${summary.alerts.length === 1 ? '' : 's'}.`,
  );
  if (summary.badRequests > 0) {
    lines.push(`${summary.badRequests} entr${summary.badRequests === 1 ? 'y' : 'ies'} could not be read:`);
    for (const e of summary.errors) lines.push(`  ${oneLine(e)}`);
  }
  for (const a of summary.alerts) {
    const repeats = a.count > 1 ? ` (x${a.count})` : '';
    lines.push(`${a.severity.toUpperCase().padEnd(8)} ${a.detector.padEnd(16)} ${oneLine(a.identity)}  ${oneLine(a.title)}${repeats}`);
    lines.push(`         ${a.links.trace}`);
    const records = a.evidence?.auditIds;
    if (Array.isArray(records) && records.length > 0) lines.push(`         records: ${oneLine(records.slice(0, MAX_PRINTED_RECORD_IDS).join(', '))}${records.length > MAX_PRINTED_RECORD_IDS ? ', ...' : ''}`);
  }
  return lines.join('\n');
}

/** Span text can carry control characters: keep each alert on its own terminal lines. */
function oneLine(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ');
}
