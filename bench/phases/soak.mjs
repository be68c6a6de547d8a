// The soak phase (not in the default set: `BENCH_PHASES=soak npm run bench`): a day of event time
// at a steady rate with `storage.retention: 2h`, the database size and RSS sampled.
//
// Settings (environment):
//   BENCH_SOAK_SECONDS wall time of the soak phase (default 360): a day of event time
//   BENCH_SOAK_RATE    spans/s the soak sends (default 2000), steady
//
// A phase module exports `name`, `inDefault` (run without BENCH_PHASES naming it), `run(context)`
// (context: { loadgen, startConduct, settings, results }, resolves with the phase's figures) and
// `rows(figures)` (rows [figure, value, target, met] for the printed table). run.mjs lists the
// modules it loads in PHASE_MODULES.
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { fmt, log, mark, procStats, serverSettings, sleep } from '../harness.mjs';
import { sampleSpace, spaceLine, spaceRows } from './soak-space.mjs';

export const name = 'soak';
export const inDefault = false;

const SOAK_SECONDS = Number(process.env.BENCH_SOAK_SECONDS ?? 360);
const SOAK_RATE = Number(process.env.BENCH_SOAK_RATE ?? 2_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);

/** Event time the soak covers, and the retention it runs with. */
const SOAK_EVENT_MS = 24 * 3_600_000;
const SOAK_RETENTION_MS = 2 * 3_600_000;
/** Wall time between the soak's samples. */
const SOAK_SAMPLE_MS = 10_000;

/**
 * A day of event time at a steady rate with retention on (`storage.retention: 2h`): requests are
 * stamped with event time running BENCH_SOAK_SECONDS / 24 h faster than the wall clock, and the
 * database size (file + WAL, or pg_database_size) and the server's RSS are sampled every 10 s,
 * on SQLite with the pages of each table (its indexes included), the free pages and the WAL file.
 * Retention sweeps every 60 s of wall time, so the store holds 2 h of event time plus up to one
 * sweep's worth; after the first retention period both figures should stay flat.
 */
export async function run({ loadgen, startConduct }) {
  const server = await startConduct('soak', { storage: { retention: `${SOAK_RETENTION_MS}ms` } });
  const scale = SOAK_EVENT_MS / (SOAK_SECONDS * 1000);
  const startMs = Date.now() - SOAK_EVENT_MS - 3_600_000;
  try {
    const samples = [];
    let polling = true;
    const t0 = performance.now();
    const poller = (async () => {
      while (polling) {
        await sleep(SOAK_SAMPLE_MS);
        const stats = procStats(server.pid);
        const m = await server.metrics();
        const at = performance.now() - t0;
        samples.push({
          eventHours: (at * scale) / 3_600_000,
          dbMB: (await server.dbBytes()) / 1e6,
          rssMB: stats.rssMB,
          spansProcessed: m.conduct_spans_processed_total ?? 0,
          deleted: m.conduct_retention_deleted_total ?? 0,
          ...(serverSettings.postgres ? {} : sampleSpace(server.dbPath)),
        });
        log(`soak ${samples.at(-1).eventHours.toFixed(1)} h of event time: db ${samples.at(-1).dbMB.toFixed(1)} MB, rss ${stats.rssMB.toFixed(0)} MB${spaceLine(samples.at(-1))}`);
      }
    })();
    const res = await loadgen.run({
      transport: 'grpc', target: server.grpc, concurrency: CONCURRENCY, durationMs: SOAK_SECONDS * 1000, spansPerSec: SOAK_RATE,
      eventTime: { startMs, scale },
    });
    polling = false;
    await poller;
    const retentionHours = SOAK_RETENTION_MS / 3_600_000;
    // Flat after the first retention period (plus a sweep): the later samples against the first of them.
    const settledFromHours = retentionHours + (60_000 * scale) / 3_600_000 + 1;
    const settled = samples.filter((x) => x.eventHours >= settledFromHours);
    const range = (key) => settled.length ? [Math.min(...settled.map((x) => x[key])), Math.max(...settled.map((x) => x[key]))] : [0, 0];
    const firstHalf = settled.slice(0, Math.ceil(settled.length / 2));
    const secondHalf = settled.slice(Math.ceil(settled.length / 2));
    const peak = (xs, key) => Math.max(0, ...xs.map((x) => x[key]));
    return {
      spansAcked: res.spansAcked,
      rate: res.spansPerSec,
      scale,
      settledFromHours,
      samples,
      db: range('dbMB'),
      rss: range('rssMB'),
      dbPeakFirstHalf: peak(firstHalf, 'dbMB'),
      dbPeakSecondHalf: peak(secondHalf, 'dbMB'),
      rssPeakFirstHalf: peak(firstHalf, 'rssMB'),
      rssPeakSecondHalf: peak(secondHalf, 'rssMB'),
      loadAverageAtEnd: loadavg(),
    };
  } finally {
    await server.close();
  }
}

export function rows(k) {
  const out = [];
  out.push([`soak: ${fmt(k.spansAcked)} spans over 24 h of event time (x${fmt(k.scale)}), spans/s`, fmt(k.rate), '', '']);
  out.push(['soak: database MB after the first retention period, min - max', `${fmt(k.db[0], 1)} - ${fmt(k.db[1], 1)}`, '', '']);
  out.push(['soak: database MB peak, first / second half of that', `${fmt(k.dbPeakFirstHalf, 1)} / ${fmt(k.dbPeakSecondHalf, 1)}`, 'flat', mark(k.dbPeakSecondHalf <= k.dbPeakFirstHalf * 1.05)]);
  out.push(['soak: RSS MB after the first retention period, min - max', `${fmt(k.rss[0])} - ${fmt(k.rss[1])}`, '', '']);
  out.push(['soak: RSS MB peak, first / second half of that', `${fmt(k.rssPeakFirstHalf)} / ${fmt(k.rssPeakSecondHalf)}`, 'flat', mark(k.rssPeakSecondHalf <= k.rssPeakFirstHalf * 1.1)]);
  out.push(...spaceRows(k.samples.find((x) => x.eventHours >= k.settledFromHours) ?? k.samples[0], k.samples.at(-1), fmt));
  for (const x of k.samples.filter((_, i) => i % 3 === 2)) out.push([`  soak sample at ${fmt(x.eventHours, 1)} h: database MB, RSS MB`, `${fmt(x.dbMB, 1)}, ${fmt(x.rssMB)}`, '', '']);
  return out;
}
