/**
 * Write throughput of the store. After `npm run build`:
 *   node backend/dist/store/sqlite/store.bench.js [chains] [callsPerChain]
 * Reports chains/s and calls/s as the table grows; never gates anything on time.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Call, Chain } from '@conduct/processor';
import { openStore } from './store.js';

const totalChains = Number(process.argv[2] ?? 200_000);
const callsPerChain = Number(process.argv[3] ?? 5);
const batchSize = 500;

function randomHex(bytes: number): string {
  let s = '';
  for (let i = 0; i < bytes; i++) s += Math.floor(Math.random() * 256).toString(16).padStart(2, '0');
  return s;
}

function makeChain(i: number): Chain {
  const traceId = randomHex(16);
  const identity = `svc:team${i % 50}/worker${i % 400}`;
  const start = 1_700_000_000_000 + i * 10;
  const calls: Call[] = [];
  for (let c = 0; c < callsPerChain; c++) {
    calls.push({
      traceId, spanId: randomHex(8), parentSpanId: '', identity, identityKind: 'workload',
      service: `team${i % 50}/worker${i % 400}`, peer: `svc${(i + c) % 30}`, peerKind: 'service', external: false,
      operation: `GET /api/v1/items/{id}/${c % 7}`, protocol: 'http', startMs: start + c, durationMs: 3,
      status: 'ok', name: 'GET', source: { region: 'eu-west-1', host: `host-${i % 20}` },
    });
  }
  return { traceId, identity, identityKind: 'workload', startMs: start, endMs: start + callsPerChain, calls };
}

const dir = mkdtempSync(join(tmpdir(), 'conduct-bench-'));
const store = await openStore({ path: join(dir, 'bench.db') });
try {
  let written = 0;
  let windowStart = performance.now();
  let windowChains = 0;
  while (written < totalChains) {
    const batch: Chain[] = [];
    for (let i = 0; i < batchSize && written + i < totalChains; i++) batch.push(makeChain(written + i));
    store.writeChains(batch);
    written += batch.length;
    windowChains += batch.length;
    if (written % 50_000 === 0 || written === totalChains) {
      const secs = (performance.now() - windowStart) / 1000;
      const rate = Math.round(windowChains / secs);
      process.stdout.write(`${written} chains stored: ${rate} chains/s, ${rate * callsPerChain} calls/s\n`);
      windowStart = performance.now();
      windowChains = 0;
    }
  }
  process.stdout.write(`database ${(store.sizeBytes() / 1e6).toFixed(1)} MB\n`);
} finally {
  store.close();
  rmSync(dir, { recursive: true, force: true });
}
