/**
 * Deterministic traffic for the cluster tests, as OTLP/HTTP JSON requests of one trace each (what
 * the Collector's load-balancing exporter forwards, split by trace id): a learning phase of
 * ordinary calls by a dozen service-account principals, then an attack phase where four of them
 * misbehave (a new peer, a new operation, a new network and client, an enumeration of accounts)
 * while the others go on as usual.
 */
import { createHash } from 'node:crypto';

export const IDENTITIES = 12;
export const principal = (i: number) => `system:serviceaccount:apps:worker-${String(i).padStart(2, '0')}`;
/** Config of every conduct in these tests: short learning, quick stitching. */
export const LEARNING_YAML = `learning: { minCalls: 20, period: 10m }
stitching: { idle: 200ms }
`;

const T0 = Date.UTC(2026, 10, 20, 9, 0, 0);
const SECOND = 1000;

export interface TrafficRequest {
  traceId: string;
  body: string;
}

interface Call {
  service: string;
  route: string;
  method?: string;
  address?: string;
  userAgent?: string;
  account?: string;
}

const hex = (text: string, length: number) => createHash('sha256').update(text).digest('hex').slice(0, length);

function request(traceId: string, identity: string, calls: readonly Call[], startMs: number): TrafficRequest {
  const attr = (key: string, value: string) => ({ key, value: { stringValue: value } });
  const resourceSpans = calls.map((c, k) => {
    const start = BigInt(startMs + k * 40) * 1_000_000n;
    return {
      resource: { attributes: [attr('service.name', c.service), attr('service.namespace', 'apps')] },
      scopeSpans: [
        {
          spans: [
            {
              traceId,
              spanId: hex(`${traceId}/${k}`, 16),
              name: `${c.method ?? 'GET'} ${c.route}`,
              kind: 2,
              startTimeUnixNano: String(start),
              endTimeUnixNano: String(start + 15_000_000n),
              attributes: [
                attr('http.request.method', c.method ?? 'GET'),
                attr('http.route', c.route),
                attr('enduser.id', identity),
                attr('client.address', c.address ?? '10.20.0.7'),
                attr('user_agent.original', c.userAgent ?? 'apps-worker/2.1 (go-http-client)'),
                ...(c.account ? [attr('cloud.account.id', c.account)] : []),
              ],
            },
          ],
        },
      ],
    };
  });
  return { traceId, body: JSON.stringify({ resourceSpans }) };
}

/** The usual calls of identity i (two shapes, alternating). */
function usual(i: number, n: number): Call[] {
  const a = { service: `orders-${i % 4}`, route: '/orders/{id}' };
  const b = { service: 'inventory', route: `/stock/${i % 3 === 0 ? 'reserve' : 'check'}`, method: 'POST' };
  const c = { service: 'ledger', route: '/entries' };
  return n % 2 === 0 ? [a, b] : [a, b, c];
}

/** Learning: every identity calls as usual every 20 s of event time for 12 minutes. */
export function learningPhase(): TrafficRequest[] {
  const out: TrafficRequest[] = [];
  for (let n = 0; n < 36; n++) {
    for (let i = 0; i < IDENTITIES; i++) {
      out.push(request(hex(`learn/${i}/${n}`, 32), principal(i), usual(i, n), T0 + n * 20 * SECOND + i * 300));
    }
  }
  return out;
}

/** Attacks among ordinary traffic, 13 minutes on. */
export function attackPhase(): TrafficRequest[] {
  const out: TrafficRequest[] = [];
  const start = T0 + 13 * 60 * SECOND;
  for (let n = 0; n < 6; n++) {
    for (let i = 4; i < IDENTITIES; i++) {
      out.push(request(hex(`attack-usual/${i}/${n}`, 32), principal(i), usual(i, n), start + n * 20 * SECOND + i * 300));
    }
  }
  const at = (k: number) => start + 30 * SECOND + k * 7 * SECOND;
  out.push(request(hex('attack/new-peer', 32), principal(0), [...usual(0, 0), { service: 'secrets-vault', route: '/v1/secret/{path}' }], at(0)));
  out.push(request(hex('attack/new-operation', 32), principal(1), [usual(1, 0)[0]!, { service: 'inventory', route: '/stock/export', method: 'POST' }], at(1)));
  out.push(
    request(hex('attack/new-source', 32), principal(2), usual(2, 0).map((c) => ({ ...c, address: '203.0.113.77', userAgent: 'curl/8.5.0' })), at(2)),
  );
  const accounts = Array.from({ length: 14 }, (_, k) => ({ service: 'storage-api', route: '/buckets', account: String(111111111100 + k) }));
  out.push(request(hex('attack/enumeration', 32), principal(3), accounts, at(3)));
  return out;
}

/** Which of `n` instances a trace goes to (the load-balancing exporter's routing by trace id, in spirit). */
export function routeOf(traceId: string, n: number): number {
  return parseInt(traceId.slice(0, 8), 16) % n;
}

/** Sends each request to `http` (OTLP/HTTP base URLs) by its trace id; every answer must be 200. */
export async function sendSplit(requests: readonly TrafficRequest[], https: readonly string[]): Promise<void> {
  const queue = [...requests];
  const worker = async () => {
    for (;;) {
      const r = queue.shift();
      if (!r) return;
      const target = https[routeOf(r.traceId, https.length)]!;
      for (let attempt = 0; ; attempt++) {
        const res = await fetch(`${target}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: r.body });
        await res.arrayBuffer();
        if (res.status === 200) break;
        // 503 (storage out of reach) and 429 are retried, as an OTLP exporter does.
        if ((res.status !== 503 && res.status !== 429) || attempt > 600) throw new Error(`OTLP answered ${res.status}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
}
