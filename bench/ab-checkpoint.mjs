// A/B of the detection checkpoint alone: the checkpoints one real detection run writes (600 bench
// requests, batches of 512 traces) applied by two saved builds' SQLite detection state, alternating
// checkpoint by checkpoint, each side on its own fresh database; CPU µs per baseline entry row.
//
//   node --expose-gc bench/ab-checkpoint.mjs <saved build A> <saved build B>   # then in the other order
//
// Saved builds must sit inside this checkout (e.g. bench/.ab/) so their package imports resolve.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { workloadChainBatches } from './workload-chains.mjs';
const [A, B] = process.argv.slice(2);
if (!A || !B) throw new Error('usage: bench/ab-checkpoint.mjs <saved build A> <saved build B>');
const dirs = [];
const tempDb = (name) => {
  const dir = mkdtempSync(join(tmpdir(), 'conduct-ab-checkpoint-'));
  dirs.push(dir);
  return join(dir, name);
};
const load = (dir) => import(pathToFileURL(join(resolve(dir), 'index.js')).href);
const mods = [await load(A), await load(B)];
const batches = workloadChainBatches(600, 512);
// Record the checkpoints one detection writes.
const rec = await mods[0].openSqliteBackend({ path: tempDb('rec.db') });
const checkpoints = [];
const detection = await mods[0].createDetection({ state: { ...rec.detection, checkpoint: async (cp) => { checkpoints.push(JSON.parse(JSON.stringify({ baselines: cp.baselines }))); } }, learning: { minCalls: 100, period: 1000, forgetAfter: 30 * 86400000 }, traceUrl: 'http://x/{traceId}' });
for (const b of batches) await detection.analyse(b);
const rows = checkpoints.reduce((n, c) => n + (c.baselines ?? []).reduce((m, d) => m + d.entries.length, 0), 0);
console.log(`${checkpoints.length} checkpoints, ${rows} entry rows`);
const cpu = () => { const u = process.cpuUsage(); return u.user + u.system; };
const ratios = [];
for (let round = 0; round < 9; round++) {
  const sides = await Promise.all(mods.map((m) => m.openSqliteBackend({ path: tempDb('x.db') })));
  const us = [0, 0];
  for (const [i, cp] of checkpoints.entries()) {
    for (const k of i % 2 ? [1, 0] : [0, 1]) {
      const c = cpu();
      await sides[k].detection.checkpoint(cp);
      us[k] += cpu() - c;
    }
  }
  for (const s of sides) await s.close();
  ratios.push(us[1] / us[0]);
  console.log(`round ${round}: A ${(us[0] / rows).toFixed(3)} B ${(us[1] / rows).toFixed(3)} µs/row, B/A ${(us[1] / us[0]).toFixed(3)}`);
}
ratios.sort((x, y) => x - y);
console.log('median B/A', ratios[4].toFixed(3));
await rec.close();
for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
