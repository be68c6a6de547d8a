import type { Call, Chain } from '@conduct/processor';

/** Hand-built chains with explicit event times for the detection tests. */

export const T0 = Date.UTC(2026, 0, 5, 8, 0, 0);
export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;

let seq = 0;
const hex = (n: number, width: number) => n.toString(16).padStart(width, '0');

export function traceId(): string {
  seq++;
  return hex(seq, 32);
}

export type CallSpec = Partial<Call> & { operation: string; peer: string };

export function chain(identity: string, startMs: number, specs: CallSpec[], extra: Partial<Chain> = {}): Chain {
  const tid = extra.traceId ?? traceId();
  const calls: Call[] = specs.map((s, i) => ({
    traceId: tid,
    spanId: hex(++seq, 16),
    parentSpanId: '',
    identity,
    identityKind: extra.identityKind ?? 'workload',
    service: 'ci/deployer',
    peerKind: 'service',
    external: false,
    protocol: 'http',
    startMs: startMs + i * 100,
    durationMs: 50,
    status: 'ok',
    name: s.operation,
    source: {},
    ...s,
  }));
  return {
    traceId: tid,
    identity,
    identityKind: extra.identityKind ?? 'workload',
    startMs,
    endMs: startMs + specs.length * 100,
    calls,
    ...extra,
  };
}

/** Normal deploy chain with an optional status check and a churning pod name. */
export function deployChain(identity: string, startMs: number, i: number): Chain {
  const source = { region: 'us-east-1', account: '111111111111', cluster: 'prod-a', host: `deployer-7f9c-${i % 17}` };
  const specs: CallSpec[] = [
    { operation: 'GET /apis/apps/v1/deployments/{id}', peer: 'kube-api', target: 'deployments', source },
    { operation: 'PATCH /apis/apps/v1/deployments/{id}', peer: 'kube-api', target: 'deployments', source },
  ];
  if (i % 3 === 0) specs.push({ operation: 'GET /healthz', peer: 'kube-api', source });
  specs.push({ operation: 'PutObject', peer: 's3.amazonaws.com', peerKind: 'http', target: 'deploy-logs', account: '111111111111', source });
  return chain(identity, startMs, specs);
}

/** Trains `identity` with one deploy chain every `everyMs` for `count` chains from `fromMs`. */
export function training(identity: string, fromMs: number, count: number, everyMs: number): Chain[] {
  return Array.from({ length: count }, (_, i) => deployChain(identity, fromMs + i * everyMs, i));
}

/** The storefront of {@link storefrontChains}. */
export const STOREFRONT = 'svc:shop/storefront';
const storefrontCall = (op: string): CallSpec => ({ operation: op, peer: op.slice(5) });

/**
 * An identity that varies its order: a storefront calling two to four of `cart`, `price`, `user`
 * and `reco` in a (seeded) random order, every fourth chain after a `stock` call that only ever
 * comes first; one chain a minute from `fromMs`.
 */
export function storefrontChains(fromMs: number, count: number): Chain[] {
  const ops = ['GET /cart', 'GET /price', 'GET /user', 'GET /reco'];
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  return Array.from({ length: count }, (_, i) => {
    const order = [...ops].sort(() => next() - 0.5).slice(0, 2 + Math.floor(next() * 3));
    if (i % 4 === 0) order.unshift('GET /stock');
    return chain(STOREFRONT, fromMs + i * MINUTE, order.map(storefrontCall), { traceId: traceId() });
  });
}

/** A storefront chain of the given operations (`GET /cart`, ...). */
export function storefrontChain(startMs: number, ops: readonly string[]): Chain {
  return chain(STOREFRONT, startMs, ops.map(storefrontCall));
}
