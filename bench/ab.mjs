// A/B of one hot-path stage between a saved build and the current one, interleaved in one process
// so that both see the same machine load (the CPU figures of a shared machine drift by tens of
// percent between runs; interleaving cancels most of that).
//
//   cp -r processor/dist /tmp/processor-before      # before the change
//   ... change, npx tsc -b backend/tsconfig.json ...
//   node --expose-gc bench/ab.mjs --stage derive --before /tmp/processor-before [--rounds 9]
//   node --expose-gc bench/ab.mjs --stage detect --before /tmp/backend-before
//
// Stages: derive (processor: identity, calls, chains), store (backend: writeChains on a temporary
// file), detect (backend: learn + detectors). AB_AFTER=<saved build> compares two saved builds;
// without it the current build is the second side (a null A/B of the same code then shows a bias
// against the current build of up to 40% for derive: compare saved copies).
// A saved build must sit inside this checkout (e.g. bench/.ab/) so its package imports resolve.
// --persist-interval <ms> (detect) gives both sides `persistIntervalMs` (a build without it writes
// every batch); the baseline state still held back at the end is written within the measurement.
// --allow-differ: builds whose detection finds or learns differently (commits apart that changed the
// detectors) are compared anyway; the counts are printed instead of stopping.
// --event-step <ms> is the event time between requests (default 2.56: 600 requests are 1.5 s, no
// rate window closes); 100000 spreads them over 17 hours, so identities have learned rate samples.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { decodeTracesRequestColumns } from '@conduct/proto';
import * as processorNow from '@conduct/processor';
import * as backendNow from '@conduct/backend';
import { createRequestSource, SPANS_PER_REQUEST } from './workload.mjs';

const { values } = parseArgs({ options: { stage: { type: 'string' }, before: { type: 'string' }, rounds: { type: 'string', default: '9' }, requests: { type: 'string', default: '150' }, 'persist-interval': { type: 'string', default: '0' }, 'event-step': { type: 'string', default: '2.56' }, 'allow-differ': { type: 'boolean', default: false } } });
const rounds = Number(values.rounds);
const requests = Number(values.requests);
const before = await import(pathToFileURL(join(resolve(values.before), 'index.js')).href);

const cpu = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const source = createRequestSource(7);
let now = Date.now();
// Columns (the stitcher's input since the columnar form): the derive stage compares builds that have it.
const keep = processorNow.attributeKeepFor(processorNow.DEFAULT_IDENTITY_RULES);
const decoded = Array.from({ length: requests }, () => decodeTracesRequestColumns(source.next((now += Number(values['event-step']))), { keep }));
const stitcher = processorNow.createStitcher({ idleMs: 3_600_000, latenessMs: 3_600_000, maxPendingSpans: 10_000_000 });
for (const d of decoded) stitcher.add(d);
const traces = stitcher.flush();
const spans = requests * SPANS_PER_REQUEST;
const resolverNow = processorNow.createIdentityResolver(processorNow.DEFAULT_IDENTITY_RULES);
const batches = [];
for (let i = 0; i < traces.length; i += 1024) batches.push(traces.slice(i, i + 1024).flatMap((t) => processorNow.deriveTrace(t.spans, resolverNow).chains));

/** One measured pass of the stage with module `m`; µs of CPU per span. */
async function pass(m) {
  globalThis.gc?.(); // garbage of the previous pass is not charged to this one
  if (values.stage === 'derive') {
    const resolver = m.createIdentityResolver(m.DEFAULT_IDENTITY_RULES);
    const c = cpu();
    let n = 0;
    for (const t of traces) n += m.deriveTrace(t.spans, resolver).calls.length;
    return { us: (cpu() - c) / spans, n };
  }
  if (values.stage === 'detect') {
    const dir = mkdtempSync(join(tmpdir(), 'conduct-ab-'));
    const learning = { minCalls: 100, period: 1_000, forgetAfter: 30 * 86_400_000 };
    const detectionOptions = { learning, traceUrl: 'http://localhost/{traceId}', persistIntervalMs: Number(values['persist-interval']) };
    // Builds whose detection runs on the storage contracts (an async createDetection) open a
    // backend; older ones (also those with contracts for the store alone) pass the database handle.
    const onContracts = m.openSqliteBackend && m.createDetection.constructor.name === 'AsyncFunction';
    const storage = onContracts ? await m.openSqliteBackend({ path: join(dir, 'ab.db') }) : await (m.openStore ?? backendNow.openStore)({ path: join(dir, 'ab.db') });
    const detection = onContracts
      ? await m.createDetection({ state: storage.detection, ...detectionOptions })
      : m.createDetection({ db: storage.db, ...detectionOptions });
    const c = cpu();
    let n = 0;
    let alerts = 0;
    for (const chains of batches) {
      const r = await detection.analyse(chains);
      n += r.learned;
      alerts += r.alerts.length + r.updated.length;
    }
    await detection.flush?.();
    const us = (cpu() - c) / spans;
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
    return { us, n, alerts };
  }
  if (values.stage === 'store') {
    const dir = mkdtempSync(join(tmpdir(), 'conduct-ab-'));
    // Through the chain writer where the build has one (what the engine calls), else the store.
    const backend = m.openSqliteBackend ? await m.openSqliteBackend({ path: join(dir, 'ab.db') }) : undefined;
    const store = backend ? undefined : await m.openStore({ path: join(dir, 'ab.db') });
    const write = backend ? (chains) => backend.chainWriter.writeChains(chains) : async (chains) => store.writeChains(chains);
    const c = cpu();
    let n = 0;
    for (const chains of batches) n += (await write(chains)).calls;
    const us = (cpu() - c) / spans;
    await (backend ?? store).close();
    rmSync(dir, { recursive: true, force: true });
    return { us, n };
  }
  throw new Error('--stage must be derive, store or detect');
}

const now_ = process.env.AB_AFTER ? await import(pathToFileURL(join(resolve(process.env.AB_AFTER), 'index.js')).href) : values.stage === 'derive' ? processorNow : backendNow;
await pass(before);
await pass(now_);
const a = [];
const b = [];
let lastAlerts = 0;
for (let r = 0; r < rounds; r++) {
  // ABBA order: whichever side runs second in a round is not favoured.
  const x = r % 2 === 0 ? await pass(before) : undefined;
  const y = await pass(now_);
  const x2 = x ?? (await pass(before));
  if ((x2.n !== y.n || x2.alerts !== y.alerts) && !values['allow-differ']) throw new Error(`before and after disagree: ${x2.n} vs ${y.n} (alerts ${x2.alerts} vs ${y.alerts})`);
  a.push(x2.us);
  b.push(y.us);
  lastAlerts = y.alerts;
  if (r === 0 && (x2.n !== y.n || x2.alerts !== y.alerts)) process.stdout.write(`before learned ${x2.n}, alerts ${x2.alerts}; after ${y.n}, ${y.alerts}\n`);
}
const [ma, mb] = [median(a), median(b)];
const alertsNote = values.stage === 'detect' ? `, ${lastAlerts} alerts and repeats ${values['allow-differ'] ? 'after' : 'on both sides'}` : '';
process.stdout.write(`${values.stage}: before ${ma.toFixed(2)} µs/span, after ${mb.toFixed(2)} µs/span, ${(((ma - mb) / ma) * 100).toFixed(1)}% less CPU (median of ${rounds} interleaved rounds, ${spans} spans${alertsNote})\n`);
