// A/B of learning alone: learnChain of two saved builds on the bench workload's chains (600
// requests of 8-span traces, batches of 1,024 traces), alternating batch by batch, fresh baselines
// each round, 9 rounds; prints the CPU ratio B/A per round and its median. REPEAT=1 learns the
// first two batches eight times over (chains that repeat). TAKE=1 keeps the baselines in each
// build's baseline book and takes every changed baseline's delta after each batch, as the
// checkpoint does (learning and the checkpoint's share of the book together).
//
//   node --expose-gc bench/ab-learn.mjs <saved build A> <saved build B>   # then in the other order
//
// Saved builds must sit inside this checkout (e.g. bench/.ab/) so their package imports resolve.
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { workloadChainBatches } from './workload-chains.mjs';
const [A, B] = process.argv.slice(2);
if (!A || !B) throw new Error('usage: bench/ab-learn.mjs <saved build A> <saved build B>');
const load = async (dir) => ({
  ...(await import(pathToFileURL(join(resolve(dir), 'learn/baseline.js')).href)),
  book: (await import(pathToFileURL(join(resolve(dir), 'detect/baseline-book.js')).href)).loadBaselineBook,
});
const mods = [await load(A), await load(B)];
const TAKE = Boolean(process.env.TAKE);
const noState = { loadBaselines: async () => undefined, loadSuppressions: async () => [] };
const quiet = { info() {}, warn() {}, error() {}, debug() {} };
const batches = workloadChainBatches(600);
if (process.env.REPEAT) { const first = batches.slice(0, 2); batches.length = 0; for (let r = 0; r < 8; r++) batches.push(...first); }
const cpu = () => { const u = process.cpuUsage(); return u.user + u.system; };
const ratios = [];
for (let round = 0; round < 9; round++) {
  const us = [0, 0];
  const sides = await Promise.all(
    mods.map(async (m) => ({ m, bs: new Map(), book: TAKE ? await m.book(noState, { logger: quiet }) : undefined, opts: { minCalls: 100, periodMs: 1000, forgetAfterMs: 30 * 86400000 } })),
  );
  for (const [bi, chains] of batches.entries()) {
    for (const k of bi % 2 ? [1, 0] : [0, 1]) {
      const s = sides[k];
      const c = cpu();
      for (const ch of chains) {
        let b = s.bs.get(ch.identity);
        if (!b) s.bs.set(ch.identity, (b = s.book ? s.book.add(ch.identity, ch.identityKind) : s.m.createBaseline(ch.identity, ch.identityKind)));
        s.m.learnChain(b, ch, s.opts);
        s.book?.touch(b);
      }
      s.book?.takeDeltas();
      us[k] += cpu() - c;
    }
  }
  ratios.push(us[1] / us[0]);
  console.log(`round ${round}: A ${us[0]} B ${us[1]} B/A ${(us[1] / us[0]).toFixed(3)}`);
}
ratios.sort((x, y) => x - y);
console.log('median B/A', ratios[4].toFixed(3));
