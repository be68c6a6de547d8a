import * as proto from '@conduct/proto';
import { createRequestSource } from './workload.mjs';
const src = createRequestSource(5, Number(process.argv[2] ?? 4));
let now = Date.UTC(2026, 11, 1);
const ways = Number(process.argv[3] ?? 4);
const mem = new Map(); let tot = 0, hit = 0; const per = new Map();
for (let r = 0; r < 50; r++) {
  const full = proto.decodeTracesRequestFull(src.next((now += 2.56)));
  for (const rs of full.resourceSpans) for (const ss of rs.scopeSpans) for (const s of ss.spans) for (const a of s.attributes) {
    if (a.value.stringValue == null) continue;
    tot++; const m = mem.get(a.key) ?? []; const v = a.value.stringValue;
    const p = per.get(a.key) ?? [0, 0, new Set()]; p[0]++; p[2].add(v);
    if (m.includes(v)) { hit++; p[1]++; } else { m.unshift(v); if (m.length > ways) m.pop(); }
    mem.set(a.key, m); per.set(a.key, p);
  }
}
console.log(ways, 'ways hit', (hit / tot).toFixed(3), tot);
for (const [k, p] of per) console.log(k.padEnd(32), p[0], (p[1] / p[0]).toFixed(2), 'distinct', p[2].size);
