import { describe, expect, it } from 'vitest';
import { createIdentityResolver } from '../identity/index.js';
import { deriveInto, deriveTrace, settleRemembered, UNINSTRUMENTED_CALLER, type RememberedClient } from './derive.js';
import { CallTable } from './call-table.js';
import { columns, request, resource, span, spanId, SpanKind, StatusCode } from './testdata/trace-builder.js';
import type { TraceSpan } from '../identity/index.js';

const resolver = createIdentityResolver();
const derive = (spans: TraceSpan[]) => deriveTrace(spans, resolver);

const frontend = resource('frontend', { 'cloud.region': 'eu-west-1', 'cloud.account.id': '111111111111', 'host.name': 'fe-1', 'k8s.cluster.name': 'prod' });
const payments = resource('payments', { 'service.namespace': 'shop' });

describe('stitched calls', () => {
  it('pairs a client span with its server child in another service', () => {
    const { calls, chains } = derive([
      span(frontend, { id: 'root', kind: SpanKind.SERVER, attrs: { 'http.request.method': 'GET', 'http.route': '/checkout' } }),
      span(frontend, { id: 'cli', parent: 'root', kind: SpanKind.CLIENT, start: 5, end: 25, attrs: { 'http.request.method': 'POST', 'url.full': 'http://payments:8080/charge/12345?x=1', 'server.address': 'payments', 'server.port': 8080 } }),
      span(payments, { id: 'srv', parent: 'cli', kind: SpanKind.SERVER, start: 7, end: 20, status: StatusCode.ERROR, attrs: { 'http.request.method': 'POST', 'http.route': '/charge/:id', 'http.response.status_code': 502 } }),
    ]);
    expect(calls).toHaveLength(1);
    const call = calls[0]!;
    expect(call).toMatchObject({
      spanId: spanId('cli'),
      serverSpanId: spanId('srv'),
      parentSpanId: spanId('root'),
      identity: 'svc:frontend',
      identityKind: 'workload',
      service: 'frontend',
      peer: 'shop/payments',
      peerKind: 'service',
      external: false,
      operation: 'POST /charge/:id',
      protocol: 'http',
      startMs: 5,
      durationMs: 20,
      status: 'error',
      httpStatus: 502,
      source: { region: 'eu-west-1', account: '111111111111', host: 'fe-1', cluster: 'prod' },
    });
    // The server's route names the operation: learned path parameters leave it alone.
    expect(call.pathOperation).toBeUndefined();
    expect(chains).toHaveLength(1);
    expect(chains[0]!.calls).toEqual([call]);
  });

  it('works with server spans only, taking the operation from the client when the server has no route', () => {
    const { calls } = derive([
      span(frontend, { id: 'a', kind: SpanKind.SERVER, name: 'HTTP POST', attrs: { 'http.method': 'POST', 'http.url': 'http://pay/charge/9f86d081884c7d65' } }),
      span(payments, { id: 'b', parent: 'a', kind: SpanKind.SERVER, name: 'handler' }),
    ]);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ service: 'frontend', peer: 'shop/payments', operation: 'POST /charge/{id}', protocol: 'http' });
  });

  it('a server-side principal owns the call made by an instrumented caller', () => {
    const { calls, chains } = derive([
      span(frontend, { id: 'cli', kind: SpanKind.CLIENT, attrs: { 'server.address': 'payments' } }),
      span(payments, { id: 'srv', parent: 'cli', kind: SpanKind.SERVER, attrs: { 'enduser.id': 'ci-deployer', 'client.address': '10.1.2.3', 'user_agent.original': 'curl/8' } }),
    ]);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ identity: 'ci-deployer', identityKind: 'principal', service: 'frontend', peer: 'shop/payments' });
    expect(calls[0]!.source).toMatchObject({ region: 'eu-west-1', clientAddress: '10.1.2.3', network: '10.1.2.0/24', userAgent: 'curl/8', publicAddress: false });
    expect(chains.map((c) => c.identity)).toEqual(['ci-deployer']);
  });

  it('a client span that got a stitched child is not emitted again', () => {
    const { calls } = derive([
      span(frontend, { id: 'cli', kind: SpanKind.CLIENT, attrs: { 'server.address': 'payments', 'http.request.method': 'GET' } }),
      span(payments, { id: 'srv', parent: 'cli', kind: SpanKind.SERVER }),
    ]);
    expect(calls.map((c) => c.peerKind)).toEqual(['service']);
  });
});

describe('the caller version', () => {
  it('a call carries its caller resource service.version; a server-side-only call, whose resource is the callee, does not', () => {
    const v2 = resource('frontend', { 'service.version': '2.4.1' });
    const paymentsV9 = resource('payments', { 'service.namespace': 'shop', 'service.version': '9.0.0' });
    const { calls } = derive([
      span(v2, { id: 'cli', kind: SpanKind.CLIENT, attrs: { 'server.address': 'payments' } }),
      span(paymentsV9, { id: 'srv', parent: 'cli', kind: SpanKind.SERVER }),
      span(v2, { id: 'out', kind: SpanKind.CLIENT, start: 30, attrs: { 'http.request.method': 'GET', 'url.full': 'https://api.example.com/x' } }),
      span(paymentsV9, { id: 'alone', kind: SpanKind.SERVER, start: 40, attrs: { 'enduser.id': 'ci-deployer', 'client.address': '10.1.2.3' } }),
    ]);
    const bySpan = new Map(calls.map((c) => [c.spanId, c]));
    expect(bySpan.get(spanId('cli'))!.version).toBe('2.4.1');
    expect(bySpan.get(spanId('out'))!.version).toBe('2.4.1');
    expect(bySpan.get(spanId('alone'))).toBeDefined();
    expect(bySpan.get(spanId('alone'))!.version).toBeUndefined();
    expect(derive([span(frontend, { id: 'x', kind: SpanKind.CLIENT, attrs: { 'server.address': 'db' } })]).calls[0]!.version).toBeUndefined();
  });
});

describe('server-side-only calls', () => {
  it('a server span with a principal and no instrumented caller is a call from client.address', () => {
    const { calls } = derive([
      span(payments, {
        id: 'srv',
        kind: SpanKind.SERVER,
        attrs: { 'user.id': 'svc-reporting', 'client.address': '203.0.113.9', 'user_agent.original': 'python-requests/2.31', 'http.request.method': 'GET', 'url.path': '/invoices/550e8400-e29b-41d4-a716-446655440000' },
      }),
    ]);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({
      identity: 'svc-reporting',
      service: UNINSTRUMENTED_CALLER,
      peer: 'shop/payments',
      peerKind: 'service',
      spanId: spanId('srv'),
      serverSpanId: spanId('srv'),
      operation: 'GET /invoices/{id}',
      // Read from the raw path: learned path parameters may still template it.
      pathOperation: true,
      source: { clientAddress: '203.0.113.9', network: '203.0.113.0/24', publicAddress: true, userAgent: 'python-requests/2.31' },
    });
  });

  it('uses /48 for IPv6 and the old net.sock.peer.addr / http.user_agent names', () => {
    const { calls } = derive([
      span(payments, { id: 'srv', kind: SpanKind.SERVER, attrs: { 'enduser.id': 'bot', 'net.sock.peer.addr': '2001:db8:abcd:12::1', 'http.user_agent': 'Go-http-client/1.1' } }),
    ]);
    expect(calls[0]!.source).toEqual({ clientAddress: '2001:db8:abcd:12::1', network: '2001:db8:abcd::/48', publicAddress: true, userAgent: 'Go-http-client/1.1' });
  });

  it('a server span without a principal and without a caller is no call', () => {
    expect(derive([span(payments, { id: 'srv', kind: SpanKind.SERVER, attrs: { 'client.address': '1.2.3.4' } })]).calls).toEqual([]);
  });
});

describe('unstitched outbound calls: peers', () => {
  const one = (kind: number, attrs: Record<string, string | number>) =>
    derive([span(frontend, { id: 'c', kind, name: 'outbound', attrs })]).calls[0]!;

  it('peer.service / service.peer.name name a virtual peer', () => {
    expect(one(SpanKind.CLIENT, { 'service.peer.name': 'billing', 'server.address': 'x.example.com' })).toMatchObject({ peer: 'billing', peerKind: 'virtual', external: false });
    expect(one(SpanKind.CLIENT, { 'peer.service': 'billing' }).peer).toBe('billing');
  });

  it('server.address:port, with net.peer.* as old names; the kind follows the protocol', () => {
    expect(one(SpanKind.CLIENT, { 'server.address': 'api.stripe.com', 'server.port': 443, 'http.request.method': 'POST', 'url.full': 'https://api.stripe.com/v1/charges' })).toMatchObject({
      peer: 'api.stripe.com:443',
      peerKind: 'http',
      external: true,
      operation: 'POST /v1/charges',
      protocol: 'http',
    });
    expect(one(SpanKind.CLIENT, { 'net.peer.name': 'orders-db.internal', 'net.peer.port': 5432, 'db.system': 'postgresql' })).toMatchObject({ peer: 'orders-db.internal:5432', peerKind: 'database', external: false });
  });

  it('a database from db.system.name + db.namespace (or the old names); operation from the query', () => {
    expect(one(SpanKind.CLIENT, { 'db.system.name': 'postgresql', 'db.namespace': 'orders', 'db.query.text': 'SELECT * FROM public.orders WHERE id = $1' })).toMatchObject({
      peer: 'postgresql/orders',
      peerKind: 'database',
      operation: 'SELECT public.orders',
      protocol: 'db',
    });
    expect(one(SpanKind.CLIENT, { 'db.system': 'mysql', 'db.name': 'shop', 'db.operation': 'INSERT', 'db.sql.table': 'carts' })).toMatchObject({ peer: 'mysql/shop', operation: 'INSERT carts', target: 'carts' });
    expect(one(SpanKind.CLIENT, { 'db.system.name': 'mongodb', 'db.operation.name': 'find', 'db.collection.name': 'users' })).toMatchObject({ operation: 'find users', target: 'users' });
  });

  it('a messaging destination', () => {
    expect(one(SpanKind.PRODUCER, { 'messaging.system': 'kafka', 'messaging.destination.name': 'orders', 'messaging.operation.type': 'send' })).toMatchObject({
      peer: 'orders',
      peerKind: 'messaging',
      operation: 'send orders',
      target: 'orders',
      protocol: 'messaging',
    });
    expect(one(SpanKind.PRODUCER, { 'messaging.destination': 'events', 'messaging.operation': 'publish' })).toMatchObject({ peer: 'events', operation: 'publish events' });
  });

  it('the host of url.full (or http.url)', () => {
    expect(one(SpanKind.CLIENT, { 'http.method': 'get', 'http.url': 'https://user:pw@S3.Amazonaws.com/bucket/key?sig=1' })).toMatchObject({ peer: 's3.amazonaws.com', peerKind: 'http', external: true, operation: 'GET /bucket/key' });
    expect(one(SpanKind.CLIENT, { 'url.full': 'http://10.0.0.7:9000/x' })).toMatchObject({ peer: '10.0.0.7:9000', external: false });
  });

  it('a span of unspecified kind with client attributes is an outbound call; an internal span is not', () => {
    expect(derive([span(frontend, { id: 'c', kind: SpanKind.UNSPECIFIED, attrs: { 'db.system.name': 'redis' } })]).calls[0]?.peer).toBe('redis');
    expect(derive([span(frontend, { id: 'c', kind: SpanKind.INTERNAL, attrs: { 'db.system.name': 'redis' } })]).calls).toEqual([]);
  });

  it('rpc: service/method and target account from the span', () => {
    const call = one(SpanKind.CLIENT, { 'rpc.system': 'aws-api', 'rpc.service': 'S3', 'rpc.method': 'ListObjectsV2', 'aws.s3.bucket': 'invoices', 'cloud.account.id': '222222222222', 'server.address': 's3.eu-west-1.amazonaws.com' });
    expect(call).toMatchObject({ operation: 'S3/ListObjectsV2', protocol: 'rpc', target: 'invoices', account: '222222222222', external: true });
    expect(call.source.account).toBe('111111111111');
    expect(one(SpanKind.CLIENT, { 'rpc.system': 'grpc', 'rpc.method': 'Charge' })).toMatchObject({ operation: 'Charge', protocol: 'grpc' });
  });
});

describe('external vs private peers', () => {
  const external = (host: string) => derive([span(frontend, { id: 'c', kind: SpanKind.CLIENT, attrs: { 'server.address': host } })]).calls[0]!.external;
  it.each([
    ['payments', false],
    ['localhost', false],
    ['db.internal', false],
    ['payments.shop.svc', false],
    ['payments.shop.svc.cluster.local', false],
    ['printer.local', false],
    ['10.2.3.4', false],
    ['172.20.0.1', false],
    ['192.168.1.1', false],
    ['127.0.0.1', false],
    ['169.254.169.254', false],
    ['::1', false],
    ['fd00::1', false],
    ['fe80::1', false],
    ['api.github.com', true],
    ['8.8.8.8', true],
    ['172.32.0.1', true],
    ['2606:4700::1111', true],
  ])('%s -> external %s', (host, expected) => {
    expect(external(host)).toBe(expected);
  });
});

describe('tool calls', () => {
  it('execute_tool under an agent belongs to the agent; chat spans are ordinary outbound calls', () => {
    const rt = resource('agent-runtime');
    const { calls, chains } = derive([
      span(rt, { id: 'agent', start: 0, attrs: { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.id': 'support-triage', 'gen_ai.agent.name': 'Support triage' } }),
      span(rt, { id: 'chat', parent: 'agent', kind: SpanKind.CLIENT, start: 1, attrs: { 'gen_ai.operation.name': 'chat', 'server.address': 'api.openai.com', 'server.port': 443 } }),
      span(rt, { id: 'tool', parent: 'agent', start: 2, name: 'execute_tool search_tickets', attrs: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'search_tickets' } }),
    ]);
    expect(calls.map((c) => [c.identity, c.peer, c.peerKind, c.operation, c.protocol])).toEqual([
      ['agent:support-triage', 'api.openai.com:443', 'virtual', 'chat', 'genai'],
      ['agent:support-triage', 'tool:search_tickets', 'tool', 'execute_tool search_tickets', 'genai'],
    ]);
    expect(calls[1]!.target).toBe('search_tickets');
    expect(chains).toHaveLength(1);
    expect(chains[0]).toMatchObject({ identity: 'agent:support-triage', identityKind: 'agent', displayName: 'Support triage' });
    expect(chains[0]!.calls.map((c) => c.startMs)).toEqual([1, 2]);
  });

  it('each chain takes the first display name of its identity, with a few agents or many', () => {
    const rt = resource('agent-runtime');
    for (const agents of [3, 40]) {
      const spans: TraceSpan[] = [];
      for (let a = 0; a < agents; a++) {
        for (const [k, name] of [[0, `Agent ${a}`], [1, `Renamed ${a}`]] as const) {
          const attrs = { 'gen_ai.agent.id': `a${a}`, 'gen_ai.agent.name': name, 'gen_ai.operation.name': 'chat', 'server.address': 'api.openai.com' };
          spans.push(span(rt, { id: `s${a}-${k}`, kind: SpanKind.CLIENT, start: 2 * a + k, attrs }));
        }
      }
      const { chains } = derive(spans);
      expect(chains.map((c) => [c.identity, c.displayName])).toEqual(Array.from({ length: agents }, (_, a) => [`agent:a${a}`, `Agent ${a}`]));
    }
    // Names do not carry over to the next trace.
    const { chains } = derive([span(rt, { id: 'x', kind: SpanKind.CLIENT, attrs: { 'gen_ai.agent.id': 'a1', 'server.address': 'api.openai.com' } })]);
    expect(chains[0]!.displayName).toBeUndefined();
  });
});

describe('chains', () => {
  it('groups calls by identity, each ordered by start time', () => {
    const api = resource('api');
    const { chains } = derive([
      span(api, { id: 'r', kind: SpanKind.SERVER }),
      span(api, { id: 'c3', parent: 'r', kind: SpanKind.CLIENT, start: 30, attrs: { 'peer.service': 'c' } }),
      span(api, { id: 'c1', parent: 'r', kind: SpanKind.CLIENT, start: 10, attrs: { 'peer.service': 'a' } }),
      span(api, { id: 'u', parent: 'r', kind: SpanKind.CLIENT, start: 20, attrs: { 'peer.service': 'b', 'enduser.id': 'alice' } }),
    ]);
    expect(chains.map((c) => [c.identity, c.calls.map((x) => x.peer)])).toEqual([
      ['svc:api', ['a', 'c']],
      ['alice', ['b']],
    ]);
    expect(chains[0]).toMatchObject({ startMs: 10, endMs: 40 });
  });

  it('survives hostile input: duplicate ids, self-parent, huge strings, NaN times', () => {
    const api = resource('api');
    const weird = span(api, { id: 'x', parent: 'x', kind: SpanKind.CLIENT, attrs: { 'url.full': 'http://' + 'a'.repeat(5000), 'http.request.method': 'GET' } });
    weird.span.startMs = Number.NaN;
    const { calls } = derive([weird, weird, span(api, { id: 'x', kind: SpanKind.CLIENT })]);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.peer.length).toBeLessThanOrEqual(256);
    expect(calls[0]!.startMs).toBe(0);
  });
});

describe('spans remembered for later parts', () => {
  it('read from their request until settled, then from one copy of all of that request\'s', () => {
    // One request holding two traces, each with an outbound call to a service whose spans have
    // not come: both client spans are remembered.
    const tid = (n: number) => `${n}`.padStart(32, 'c');
    const client = (n: number) =>
      span(frontend, { id: `out${n}`, traceId: tid(n), kind: SpanKind.CLIENT, start: 10, end: 20, attrs: { 'http.request.method': 'GET', 'url.full': `http://10.0.0.7:8080/pay/${n}`, 'server.address': '10.0.0.7', 'server.port': 8080 } });
    const cols = columns(request([client(1), client(2)]));
    const remembered: RememberedClient[] = [];
    const options = { remember: (_trace: string, _span: string, r: RememberedClient) => void remembered.push(r) };
    const rows = new CallTable();
    for (const n of [1, 2]) deriveInto({ traceId: tid(n), items: [cols, n - 1] }, resolver, options, rows);
    expect(remembered.map((r) => [r.cols, r.index])).toEqual([[cols, 0], [cols, 1]]);
    settleRemembered();
    const [a, b] = remembered;
    expect(a!.cols).not.toBe(cols);
    expect(b!.cols).toBe(a!.cols);
    expect(a!.cols.spanCount).toBe(2);
    for (const [r, i] of [[a!, 0], [b!, 1]] as const) {
      expect(r.cols.span(r.index)).toMatchObject({ ...cols.span(i), attributes: expect.anything() });
      expect(r.cols.spanAttrs(r.index).letters).toBe(cols.spanAttrs(i).letters);
      expect(r.service).toBe('frontend');
    }
    // Nothing waits any more: a second settle copies nothing.
    settleRemembered();
    expect(a!.cols).toBe(b!.cols);
  });
});
