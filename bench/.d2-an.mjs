import * as proto from '@conduct/proto';
import { createRequestSource } from './workload.mjs';
const src = createRequestSource(5, Number(process.argv[2] ?? 4));
let now = Date.UTC(2026, 11, 1);
const next = new Map(); const next2 = new Map(); let hit = 0, hit2=0, tot = 0; let names = new Set(); let nameHitPrev=0, spans=0;
const byName = new Map(); let hitName=0; let lastNameOfRes=new Map();
for (let r = 0; r < 50; r++) {
  const full = proto.decodeTracesRequestFull(src.next((now += 2.56)));
  for (const rs of full.resourceSpans) for (const ss of rs.scopeSpans) for (const s of ss.spans) {
    spans++; names.add(s.name);
    let prev = '^';
    const seqPrev = byName.get(s.name) ?? [];
    s.attributes.forEach((a, i) => {
      tot++; const n = next.get(prev); if (n === a.key) hit++; 
      const two = next2.get(prev) ?? []; if (two.includes(a.key)) hit2++;
      if (seqPrev[i] === a.key) hitName++;
      next.set(prev, a.key); if (!two.includes(a.key)) next2.set(prev, [a.key, two[0]]); prev = a.key;
    });
    byName.set(s.name, s.attributes.map(a=>a.key));
  }
}
console.log({ tot, keyNextHit: hit / tot, twoWay: hit2/tot, sameNamePos: hitName/tot, distinctNames: names.size, spans });
