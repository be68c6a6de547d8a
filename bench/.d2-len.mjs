import * as proto from '@conduct/proto';
import { createRequestSource } from './workload.mjs';
const src = createRequestSource(5, 4);
let now = Date.UTC(2026, 11, 1);
const per = new Map();
for (let r = 0; r < 20; r++) {
  const full = proto.decodeTracesRequestFull(src.next((now += 2.56)));
  for (const rs of full.resourceSpans) for (const ss of rs.scopeSpans) for (const s of ss.spans) for (const a of s.attributes) {
    const v = a.value.stringValue; if (v == null) continue;
    const p = per.get(a.key) ?? { n: 0, long: 0, max: 0, d: new Set() }; p.n++; if (Buffer.byteLength(v) > 64) { p.long++; p.d.add(v); } p.max = Math.max(p.max, v.length); per.set(a.key, p);
  }
}
for (const [k, p] of per) if (p.long) console.log(k, p.n, p.long, p.max, 'distinct long', p.d.size);
