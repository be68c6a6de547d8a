import { readFileSync, readdirSync } from 'node:fs';
const [dirA, jsonA, dirB, jsonB] = process.argv.slice(2);
function load(dir, json) {
  const f = readdirSync(dir).find((x) => x.includes('.001.'));
  const p = JSON.parse(readFileSync(`${dir}/${f}`, 'utf8'));
  const r = JSON.parse(readFileSync(json, 'utf8'));
  const spans = r.e2e['4'].http.default.spansProcessed;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map();
  for (let i = 0; i < p.samples.length; i++) {
    const n = byId.get(p.samples[i]);
    const k = `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.split('/').slice(-2).join('/')}`;
    self.set(k, (self.get(k) ?? 0) + (p.timeDeltas[i] ?? 0));
  }
  const per = new Map([...self].map(([k, us]) => [k, (us * 1000) / spans]));
  return per;
}
const a = load(dirA, jsonA), b = load(dirB, jsonB);
const keys = [...new Set([...a.keys(), ...b.keys()])].sort((x, y) => (b.get(y) ?? 0) + (a.get(y) ?? 0) - (b.get(x) ?? 0) - (a.get(x) ?? 0));
let ta = 0, tb = 0;
for (const k of keys) { if (k.startsWith('(idle)')) continue; ta += a.get(k) ?? 0; tb += b.get(k) ?? 0; }
console.log(`total non-idle ns/span: base ${ta.toFixed(0)} new ${tb.toFixed(0)}`);
for (const k of keys.slice(0, 25)) console.log(`${(a.get(k) ?? 0).toFixed(0).padStart(6)} ${(b.get(k) ?? 0).toFixed(0).padStart(6)}  ${k}`);
