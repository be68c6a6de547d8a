// A/B of detection's analysis alone (no SQLite): two saved builds' createDetection over the bench
// workload's chains, each with a detection state that keeps nothing (checkpoints are dropped; the
// baseline book still takes its deltas), alternating batch by batch, fresh detections each round;
// prints CPU µs per chain of each side and the ratio B/A per round and its median. Enforcing after
// 1 s of event time (--period), as in a long run. Position in a batch's pair favours neither side
// by much here (no I/O), but run it in both orders.
//
//   node --expose-gc bench/ab-analyse.mjs <saved build A> <saved build B> [--requests 600] [--rounds 9] [--period 1000]
//
// Saved builds must sit inside this checkout (e.g. bench/.ab/) so their package imports resolve.
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { workloadChainBatches } from './workload-chains.mjs';
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { requests: { type: 'string', default: '600' }, rounds: { type: 'string', default: '9' }, period: { type: 'string', default: '1000' } },
});
const [A, B] = positionals;
if (!A || !B) throw new Error('usage: bench/ab-analyse.mjs <saved build A> <saved build B>');
const load = (dir) => import(pathToFileURL(join(resolve(dir), 'index.js')).href);
const mods = [await load(A), await load(B)];
const batches = workloadChainBatches(Number(values.requests), 512);
const chains = batches.reduce((n, b) => n + b.length, 0);
/** A detection state that starts empty and keeps nothing. */
const nothing = () => ({
  loadBaselines: async () => undefined,
  loadSuppressions: async () => [],
  loadHeld: async () => [],
  heldByAlert: async () => [],
  heldChainsOf: async () => [],
  getAlert: async () => undefined,
  listAlerts: async () => [],
  findRepeat: async () => undefined,
  alertsOfChain: async () => [],
  isHeld: async () => false,
  openAlertCounts: async () => [],
  baselineCounts: async () => ({ total: 0, enforcing: 0 }),
  checkpoint: async () => undefined,
});
const cpu = () => { const u = process.cpuUsage(); return u.user + u.system; };
const learning = { minCalls: 100, period: Number(values.period), forgetAfter: 30 * 86400000 };
const ratios = [];
const rounds = Number(values.rounds);
for (let round = 0; round <= rounds; round++) {
  const sides = await Promise.all(mods.map((m) => m.createDetection({ state: nothing(), learning, traceUrl: 'http://x/{traceId}' })));
  const us = [0, 0];
  for (const [i, batch] of batches.entries()) {
    for (const k of i % 2 ? [1, 0] : [0, 1]) {
      const copy = structuredClone(batch);
      const c = cpu();
      await sides[k].analyse(copy);
      us[k] += cpu() - c;
    }
  }
  if (round === 0) continue; // warm-up
  ratios.push(us[1] / us[0]);
  console.log(`round ${round}: A ${(us[0] / chains).toFixed(3)} B ${(us[1] / chains).toFixed(3)} µs/chain, B/A ${(us[1] / us[0]).toFixed(3)}`);
}
ratios.sort((x, y) => x - y);
console.log(`median B/A ${ratios[Math.floor(ratios.length / 2)].toFixed(3)} (${chains} chains a round)`);
