import { describe, expect, it } from 'vitest';
import type { Call } from '../model.js';
import { createIdentityResolver } from '../identity/index.js';
import { chainsOf, deriveTrace } from './derive.js';
import { MAX_ANCESTRY_DEPTH, orderCalls } from './order.js';
import { resource, span, spanId, SpanKind } from './testdata/trace-builder.js';
import type { TraceSpan } from '../identity/index.js';

const resolver = createIdentityResolver();
const T = 1_700_000_000_000;
const agent = resource('support-agent');
const crm = resource('crm');

/** Every order of the items (small inputs only). */
function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((item, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]));
}

describe('call order within a chain', () => {
  // The tool span and the HTTP span it makes start in the same millisecond; the HTTP span's id
  // sorts first and it ends first, so neither id nor end order would put the tool first.
  const spans: TraceSpan[] = [
    span(agent, { id: 'root', kind: SpanKind.SERVER, start: T, end: T + 100, attrs: { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.id': 'triage' } }),
    span(agent, { id: 'z-tool', parent: 'root', start: T + 5, end: T + 40, attrs: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'lookup' } }),
    span(agent, { id: 'a-http', parent: 'z-tool', kind: SpanKind.CLIENT, start: T + 5, end: T + 30, attrs: { 'http.request.method': 'GET', 'url.full': 'http://crm:8080/customers/42' } }),
    span(crm, { id: 'crm-srv', parent: 'a-http', kind: SpanKind.SERVER, start: T + 6, end: T + 29, attrs: { 'http.request.method': 'GET', 'http.route': '/customers/:id' } }),
    span(agent, { id: 'b-tool', parent: 'root', start: T + 50, end: T + 60, attrs: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'reply' } }),
  ];

  it('puts a call before the call its span makes when both start in the same millisecond, whatever the span order', () => {
    const expected = [spanId('root'), spanId('z-tool'), spanId('a-http'), spanId('b-tool')];
    for (const order of permutations(spans)) {
      const { chains } = deriveTrace(order, resolver);
      const triage = chains.find((c) => c.identity === 'agent:triage')!;
      expect(triage.calls.map((c) => c.spanId)).toEqual(expected);
      expect(triage.calls.map((c) => c.operation)).toEqual(['root', 'execute_tool lookup', 'GET /customers/:id', 'execute_tool reply']);
    }
  });

  it('orders unrelated calls of one millisecond by end time, then span id, and follows stitched server spans', () => {
    const base = { traceId: 't', identity: 'svc:x', identityKind: 'workload', service: 'x', peerKind: 'service', external: false, protocol: 'http', status: 'ok', name: 'n', source: {} } as const;
    const call = (id: string, extra: Partial<Call>): Call => ({ ...base, spanId: id, parentSpanId: '', peer: 'p', operation: id, startMs: T, durationMs: 10, ...extra });
    const calls = [
      call('c3', { durationMs: 5 }), // ends first
      call('c2', {}),
      call('c1', {}),
      // Made by c9's callee: its parent is c9's server span, which the calls know through c9.
      call('c0', { parentSpanId: 's9', durationMs: 1 }),
      call('c9', { serverSpanId: 's9', durationMs: 50 }),
      call('early', { startMs: T - 1, durationMs: 100 }),
    ];
    const expected = ['early', 'c3', 'c1', 'c2', 'c9', 'c0'];
    for (const order of permutations(calls)) {
      expect(chainsOf(order)[0]!.calls.map((c) => c.spanId)).toEqual(expected);
    }
  });

  it('survives hostile parent links: cycles and chains deeper than the walk limit', () => {
    const base = { traceId: 't', identity: 'svc:x', identityKind: 'workload', service: 'x', peer: 'p', peerKind: 'service', external: false, protocol: 'http', status: 'ok', name: 'n', operation: 'o', source: {} } as const;
    const cycle: Call[] = [
      { ...base, spanId: 'a', parentSpanId: 'b', startMs: T, durationMs: 1 },
      { ...base, spanId: 'b', parentSpanId: 'a', startMs: T, durationMs: 2 },
    ];
    expect(orderCalls([...cycle]).map((c) => c.spanId)).toEqual(['a', 'b']);
    // A deep chain of non-call spans between two calls: beyond the limit the link is not followed.
    const parents = new Map<string, string>();
    for (let i = 0; i < MAX_ANCESTRY_DEPTH * 2; i++) parents.set(`s${i + 1}`, `s${i}`);
    const deep: Call[] = [
      { ...base, spanId: 'leaf', parentSpanId: `s${MAX_ANCESTRY_DEPTH * 2}`, startMs: T, durationMs: 1 },
      { ...base, spanId: 's0', parentSpanId: '', startMs: T, durationMs: 5 },
    ];
    const ordered = orderCalls([...deep], (id) => (id === 'leaf' ? `s${MAX_ANCESTRY_DEPTH * 2}` : parents.get(id)));
    expect(ordered.map((c) => c.spanId).sort()).toEqual(['leaf', 's0']);
    expect(ordered).toHaveLength(2);
  });
});
