import { describe, expect, it } from 'vitest';
import { createIdentityResolver, DEFAULT_IDENTITY_RULES, MAX_IDENTITY_LENGTH, certificateId } from './index.js';
import { readerOf, resource, span, spanId, SpanKind } from '../calls/testdata/trace-builder.js';

const resolver = createIdentityResolver(DEFAULT_IDENTITY_RULES);

function actingOf(spans: ReturnType<typeof span>[], id: string) {
  return resolver.resolveTrace(spans).get(spanId(id));
}

describe('default identity rules', () => {
  const api = resource('api', { 'service.namespace': 'shop' });

  it('gen_ai.agent.id names an agent, with gen_ai.agent.name as display name', () => {
    const s = span(api, { id: 'a', attrs: { 'gen_ai.agent.id': 'support-triage', 'gen_ai.agent.name': 'Support triage' } });
    expect(resolver.spanIdentity(s.span)).toEqual({ id: 'agent:support-triage', kind: 'agent', displayName: 'Support triage' });
  });

  it('answers alike for inputs seen before and after many others (the remembered outcomes are bounded)', () => {
    const own = createIdentityResolver(DEFAULT_IDENTITY_RULES);
    const agent = (i: number, name: string) => span(api, { id: 'a', attrs: { 'gen_ai.agent.id': `bot-${i % 97}`, 'gen_ai.agent.name': name } }).span;
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 10_000; i++) {
        expect(own.spanIdentity(agent(i, `Name ${i}`))).toEqual({ id: `agent:bot-${i % 97}`, kind: 'agent', displayName: `Name ${i}` });
      }
    }
    // The same id with no name, then with a name: two outcomes, not one.
    expect(own.spanIdentity(span(api, { id: 'a', attrs: { 'gen_ai.agent.id': 'bot-1' } }).span)).toEqual({ id: 'agent:bot-1', kind: 'agent' });
    expect(own.spanIdentity(agent(1, 'Name 1'))?.displayName).toBe('Name 1');
  });

  it('enduser.id names a principal', () => {
    const s = span(api, { id: 'a', attrs: { 'enduser.id': 'ci-bot', 'user.id': 'other' } });
    expect(resolver.spanIdentity(s.span)).toEqual({ id: 'ci-bot', kind: 'principal' });
  });

  it('user.id names a principal', () => {
    const s = span(api, { id: 'a', attrs: { 'user.id': 'svc-reporting' } });
    expect(resolver.spanIdentity(s.span)).toEqual({ id: 'svc-reporting', kind: 'principal' });
  });

  it('tls.client.subject names a certificate: the CN, or a SPIFFE id when present', () => {
    const cn = span(api, { id: 'a', attrs: { 'tls.client.subject': 'CN=deployer,O=acme' } });
    expect(resolver.spanIdentity(cn.span)).toEqual({ id: 'cert:deployer', kind: 'certificate' });
    const spiffe = span(api, {
      id: 'b',
      attrs: { 'tls.client.subject': 'CN=deployer,O=acme,URI=spiffe://prod/ns/ci/sa/deployer' },
    });
    expect(resolver.spanIdentity(spiffe.span)?.id).toBe('spiffe://prod/ns/ci/sa/deployer');
    expect(certificateId('/C=US/O=acme/CN=build-agent')).toBe('cert:build-agent');
  });

  it('the workload comes from service.namespace + service.name', () => {
    expect(resolver.resourceIdentity(readerOf(api))).toEqual({ id: 'svc:shop/api', kind: 'workload' });
    expect(resolver.resourceIdentity(readerOf(resource('ledger')))).toEqual({ id: 'svc:ledger', kind: 'workload' });
  });

  it('the first matching rule wins, in order', () => {
    const s = span(api, { id: 'a', attrs: { 'gen_ai.agent.id': 'triage', 'enduser.id': 'alice' } });
    expect(resolver.spanIdentity(s.span)?.id).toBe('agent:triage');
  });
});

describe('configured rules', () => {
  it('extracts with the first non-empty capture group, and a non-matching pattern does not match', () => {
    const r = createIdentityResolver([
      { from: 'span', attribute: 'http.request.header.authorization', pattern: '^Bearer (?:(x)|([a-z]+))\\.', kind: 'principal', prefix: 'tok:' },
      ...DEFAULT_IDENTITY_RULES,
    ]);
    const res = resource('api');
    const hit = span(res, { id: 'a', attrs: { 'http.request.header.authorization': 'Bearer robot.abc' } });
    expect(r.spanIdentity(hit.span)?.id).toBe('tok:robot');
    const miss = span(res, { id: 'b', attrs: { 'http.request.header.authorization': 'Basic zzz' } });
    expect(r.spanIdentity(miss.span)).toBeUndefined();
  });

  it('a pattern on a certificate rule replaces the CN / SPIFFE logic', () => {
    const r = createIdentityResolver([{ from: 'span', attribute: 'tls.client.subject', pattern: 'O=([^,]+)', kind: 'certificate' }]);
    const s = span(resource('api'), { id: 'a', attrs: { 'tls.client.subject': 'CN=deployer,O=acme' } });
    expect(r.spanIdentity(s.span)?.id).toBe('acme');
  });

  it('joins several resource keys with / and needs the last one present', () => {
    const r = createIdentityResolver([{ from: 'resource', attribute: ['k8s.namespace.name', 'k8s.serviceaccount.name'], kind: 'workload', prefix: 'sa:' }]);
    expect(r.resourceIdentity(readerOf(resource('api', { 'k8s.namespace.name': 'ci', 'k8s.serviceaccount.name': 'deployer' }))).id).toBe('sa:ci/deployer');
    // Last key absent: the rule does not match and the fallback names the service.
    expect(r.resourceIdentity(readerOf(resource('api', { 'k8s.namespace.name': 'ci' }))).id).toBe('svc:api');
  });

  it('bounds identity ids and refuses an invalid pattern naming the rule', () => {
    const s = span(resource('api'), { id: 'a', attrs: { 'enduser.id': 'x'.repeat(4000) } });
    expect(resolver.spanIdentity(s.span)?.id.length).toBe(MAX_IDENTITY_LENGTH);
    expect(() => createIdentityResolver([{ from: 'span', attribute: 'a', pattern: '(', kind: 'x' }])).toThrow(/identity\.rules\[0\]\.pattern/);
  });
});

describe('inheritance', () => {
  const agentSvc = resource('agent-runtime');
  const tools = resource('tool-server');

  const invoke = span(agentSvc, { id: 'invoke', kind: SpanKind.INTERNAL, attrs: { 'gen_ai.agent.id': 'triage' } });
  const tool = span(agentSvc, { id: 'tool', parent: 'invoke', attrs: { 'gen_ai.operation.name': 'execute_tool' } });
  const http = span(agentSvc, { id: 'http', parent: 'tool', kind: SpanKind.CLIENT });
  const remote = span(tools, { id: 'remote', parent: 'http', kind: SpanKind.SERVER });

  it('a child in the same service inherits, recursively', () => {
    expect(actingOf([invoke, tool, http, remote], 'tool')?.id).toBe('agent:triage');
    expect(actingOf([invoke, tool, http, remote], 'http')?.id).toBe('agent:triage');
  });

  it('a child in another service does not inherit', () => {
    expect(actingOf([invoke, tool, http, remote], 'remote')?.id).toBe('svc:tool-server');
  });

  it('the order of arrival does not matter', () => {
    const orders = [
      [remote, http, tool, invoke],
      [http, remote, invoke, tool],
      [tool, invoke, remote, http],
    ];
    for (const order of orders) {
      const acting = resolver.resolveTrace(order);
      expect(acting.get(spanId('http'))?.id).toBe('agent:triage');
      expect(acting.get(spanId('remote'))?.id).toBe('svc:tool-server');
    }
  });

  it('a span-level identity on a child overrides the inherited one', () => {
    const child = span(agentSvc, { id: 'child', parent: 'invoke', attrs: { 'enduser.id': 'alice' } });
    expect(actingOf([invoke, child], 'child')?.id).toBe('alice');
  });

  it('a parent cycle does not hang and falls back to the workload', () => {
    const a = span(agentSvc, { id: 'a', parent: 'b' });
    const b = span(agentSvc, { id: 'b', parent: 'a' });
    const acting = resolver.resolveTrace([a, b]);
    expect(acting.get(spanId('a'))?.id).toBe('svc:agent-runtime');
    expect(acting.get(spanId('b'))?.id).toBe('svc:agent-runtime');
  });
});
