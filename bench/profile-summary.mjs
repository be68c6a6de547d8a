// Summarises a V8 .cpuprofile (from `node --cpu-prof`): the functions with the most self time,
// and the most inclusive time, as shares of the samples.
//
//   BENCH_SERVER_NODE_OPTIONS="--cpu-prof --cpu-prof-dir=/tmp/prof" BENCH_PHASES=e2e node bench/run.mjs
//   node bench/profile-summary.mjs /tmp/prof/CPU.*.cpuprofile [--top 30]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '30' } } });
const top = Number(values.top);

for (const file of positionals) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const hits = new Map();
  for (const s of profile.samples) hits.set(s, (hits.get(s) ?? 0) + 1);
  const total = profile.samples.length;
  const label = (n) => {
    const f = n.callFrame;
    const where = f.url ? `${f.url.replace(/^file:\/\/.*?\/(node_modules|proto|processor|backend)\//, '$1/')}:${f.lineNumber + 1}` : '';
    return `${f.functionName || '(anonymous)'} ${where}`.trim();
  };
  const self = new Map();
  const inclusive = new Map();
  for (const [id, count] of hits) {
    const name = label(byId.get(id));
    self.set(name, (self.get(name) ?? 0) + count);
    const seen = new Set();
    for (let at = id; at !== undefined; at = parent.get(at)) {
      const n = label(byId.get(at));
      if (seen.has(n)) continue;
      seen.add(n);
      inclusive.set(n, (inclusive.get(n) ?? 0) + count);
    }
  }
  const show = (title, map) => {
    process.stdout.write(`\n${title} (${file}, ${total} samples)\n`);
    for (const [name, count] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      process.stdout.write(`${((count / total) * 100).toFixed(1).padStart(5)}%  ${name}\n`);
    }
  };
  show('self time', self);
  show('inclusive time', inclusive);
}
