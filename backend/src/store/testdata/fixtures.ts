import type { Alert } from '../../alerts/model.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Call, Chain } from '@conduct/processor';

/** A temp directory removed by the returned cleanup. */
export function tempDir(prefix = 'conduct-store-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

let spanCounter = 1;
function spanId(): string {
  return (spanCounter++).toString(16).padStart(16, '0');
}

/** A hand-built call with sensible defaults. */
export function call(partial: Partial<Call> & Pick<Call, 'traceId' | 'identity'>): Call {
  return {
    spanId: spanId(),
    parentSpanId: '',
    identityKind: 'workload',
    service: 'shop/frontend',
    peer: 'checkout',
    peerKind: 'service',
    external: false,
    operation: 'POST /checkout',
    protocol: 'http',
    startMs: 1_700_000_000_000,
    durationMs: 12,
    status: 'ok',
    name: 'POST /checkout',
    source: { region: 'eu-west-1' },
    ...partial,
  };
}

/** A chain of `ops` (peer, operation) pairs, one ms apart, from `startMs`. */
export function chain(
  traceId: string,
  identity: string,
  ops: Array<[peer: string, operation: string]>,
  startMs = 1_700_000_000_000,
  extra: Partial<Chain> = {},
): Chain {
  const identityKind = extra.identityKind ?? 'workload';
  const calls = ops.map(([peer, operation], i) =>
    call({ traceId, identity, identityKind, peer, operation, name: operation, startMs: startMs + i, durationMs: 1 }),
  );
  return {
    traceId,
    identity,
    identityKind,
    startMs,
    endMs: startMs + Math.max(0, ops.length - 1) + 1,
    calls,
    ...extra,
  };
}

/** A random-looking 32-digit trace id derived from n. */
export function traceId(n: number): string {
  return (n.toString(16).padStart(8, '0') + 'a1b2c3d4e5f60718').padEnd(32, '9');
}

const ALERT_T0 = 1_700_000_000_000;

/** An alert as detection records it, with the given fields on top. */
export function testAlert(fields: Partial<Alert> & Pick<Alert, 'id' | 'identity'>): Alert {
  const at = new Date(ALERT_T0).toISOString();
  return {
    identityKind: 'workload',
    detector: 'new-peer',
    detectors: [fields.detector ?? 'new-peer'],
    findings: [],
    severity: 'medium',
    score: 50,
    title: 'New peer',
    explanation: 'It called a peer it never called before.',
    traceId: traceId(1),
    spanIds: ['00000000000000a1'],
    eventTime: at,
    firstSeen: at,
    lastSeen: at,
    count: 1,
    status: 'open',
    techniques: [],
    links: { trace: `https://traces.example/${traceId(1)}` },
    ...fields,
  };
}
