import { readFileSync } from 'node:fs';
const [file, ...fns] = process.argv.slice(2);
const p = JSON.parse(readFileSync(file, 'utf8'));
const lines = new Map();
for (const n of p.nodes) {
  if (!fns.includes(n.callFrame.functionName)) continue;
  for (const t of n.positionTicks ?? []) { const k = n.callFrame.functionName + ':' + t.line; lines.set(k, (lines.get(k) ?? 0) + t.ticks); }
}
const total = p.samples.length;
for (const [k, v] of [...lines].sort((a, b) => b[1] - a[1]).slice(0, 40)) console.log((100 * v / total).toFixed(1).padStart(5), k);
