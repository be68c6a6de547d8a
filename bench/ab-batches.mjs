// A/B of the backend engine (store, detect or both) between two saved builds, interleaved batch by
// batch: each side has its own temporary store and detection, and every batch of chains goes to
// one side then the other (order alternating per batch), so both see the same machine load within
// milliseconds. bench/ab.mjs alternates whole passes of a few seconds; on a busy shared machine its
// null A/B spread (up to ±8% for detect) hides 5% changes. This one has a position bias of its own
// (a few %, in either direction): run it in both orders and average the two ratios.
//
//   cp -r backend/dist bench/.ab/before   # before the change; after it, build and copy to bench/.ab/after
//   node --expose-gc bench/ab-batches.mjs --a bench/.ab/before --b bench/.ab/after --stage detect
//   node --expose-gc bench/ab-batches.mjs --a bench/.ab/after --b bench/.ab/before --stage detect
//
// --stage store | detect | both (default detect); --requests 600 (1.5 s of event time, so that
// identities enforce under the 1 s learning period); --rounds 5 (plus one warm-up round).
// Saved builds must sit inside this checkout (bench/.ab/ is ignored) so their package imports resolve.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { SPANS_PER_REQUEST } from './workload.mjs';
import { workloadChainBatches } from './workload-chains.mjs';

const { values } = parseArgs({
  options: {
    a: { type: 'string' },
    b: { type: 'string' },
    stage: { type: 'string', default: 'detect' },
    requests: { type: 'string', default: '600' },
    rounds: { type: 'string', default: '5' },
  },
});
if (!values.a || !values.b || !['store', 'detect', 'both'].includes(values.stage)) {
  throw new Error('usage: --a <saved build> --b <saved build> [--stage store|detect|both] [--requests n] [--rounds n]');
}
const load = (dir) => import(pathToFileURL(join(resolve(dir), 'index.js')).href);
const modules = [await load(values.a), await load(values.b)];
const requests = Number(values.requests);
const spans = requests * SPANS_PER_REQUEST;

const batches = workloadChainBatches(requests);

const cpu = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];

async function side(m) {
  const dir = mkdtempSync(join(tmpdir(), 'conduct-ab-'));
  const detectionOptions = { learning: { minCalls: 100, period: 1_000, forgetAfter: 30 * 86_400_000 }, traceUrl: 'http://localhost/{traceId}' };
  // Builds with storage contracts open a backend (its synchronous store for writes); older ones pass the handle.
  const backend = m.openSqliteBackend ? await m.openSqliteBackend({ path: join(dir, 'ab.db') }) : undefined;
  const store = backend ? backend.store : await m.openStore({ path: join(dir, 'ab.db') });
  const detection = backend ? await m.createDetection({ state: backend.detection, ...detectionOptions }) : m.createDetection({ db: store.db, ...detectionOptions });
  return { dir, backend, store, detection, us: 0, n: 0 };
}

/** One batch on one side; the store stage of `detect` is run but not charged. */
async function step(s, chains) {
  if (values.stage === 'detect') s.store.writeChains(chains);
  const c = cpu();
  if (values.stage !== 'detect') s.n += s.store.writeChains(chains).calls;
  if (values.stage !== 'store') s.n += (await s.detection.analyse(chains)).learned;
  s.us += cpu() - c;
}

const a = [];
const b = [];
for (let round = 0; round <= Number(values.rounds); round++) {
  const sides = [await side(modules[0]), await side(modules[1])];
  globalThis.gc?.();
  for (const [i, chains] of batches.entries()) {
    for (const k of i % 2 === 0 ? [0, 1] : [1, 0]) await step(sides[k], chains);
  }
  if (sides[0].n !== sides[1].n) throw new Error(`A and B disagree: ${sides[0].n} vs ${sides[1].n}`);
  for (const s of sides) {
    await (s.backend ?? s.store).close();
    rmSync(s.dir, { recursive: true, force: true });
  }
  if (round === 0) continue; // warm-up
  a.push(sides[0].us / spans);
  b.push(sides[1].us / spans);
}
const ratios = a.map((x, i) => b[i] / x - 1);
process.stdout.write(
  `${values.stage}: A ${median(a).toFixed(2)} µs/span, B ${median(b).toFixed(2)} µs/span, B vs A ${(median(ratios) * 100).toFixed(1)}% ` +
    `(median of ${a.length} rounds: ${ratios.map((r) => (r * 100).toFixed(1)).join(' ')}; ${spans} spans)\n`,
);
