import { describe, expect, it } from 'vitest';
import type { Call, Chain, ChainBatch, SourceContext } from '../model.js';
import { createBatchDecoder, createBatchEncoder } from './batch-codec.js';

// Every field filled: a field added to Call or SourceContext breaks this until the codec carries it.
const fullSource: Required<SourceContext> = {
  region: 'eu-west-1',
  account: '111122223333',
  host: 'ip-10-0-0-7',
  cluster: 'prod',
  network: '10.0.0.0/24',
  clientAddress: '10.0.0.7',
  userAgent: 'aws-cli/2.15',
  publicAddress: false,
};
const fullCall: Required<Call> = {
  traceId: 'a'.repeat(32),
  spanId: 'b'.repeat(16),
  serverSpanId: 'c'.repeat(16),
  parentSpanId: 'd'.repeat(16),
  identity: 'spiffe://prod/ns/ci/sa/deployer',
  identityKind: 'principal',
  service: 'ci/deployer',
  version: '1.8.0',
  peer: 's3.amazonaws.com:443',
  peerKind: 'http',
  external: true,
  operation: 'ListBuckets',
  pathOperation: true,
  target: 'prod-artifacts',
  account: '444455556666',
  protocol: 'http',
  startMs: 1_767_000_000_123.456,
  durationMs: 12.5,
  status: 'error',
  httpStatus: 403,
  name: 'S3.ListBuckets',
  source: fullSource,
  errorCode: 'AccessDenied',
  auditId: '3e1c6b6e-7f5a-4c1e-9a51-0d5b0c7d2f10',
};
const bareCall: Call = {
  traceId: 'a'.repeat(32),
  spanId: 'e'.repeat(16),
  parentSpanId: '',
  identity: 'svc:shop/cart',
  identityKind: 'workload',
  service: 'shop/cart',
  peer: 'postgresql/orders',
  peerKind: 'database',
  external: false,
  operation: 'SELECT orders',
  protocol: 'db',
  startMs: 1_767_000_000_200,
  durationMs: 0,
  status: 'unset',
  name: '',
  source: {},
};
const chain = (calls: Call[], extra: Partial<Chain> = {}): Chain => ({
  traceId: calls[0]!.traceId,
  identity: calls[0]!.identity,
  identityKind: calls[0]!.identityKind,
  startMs: calls[0]!.startMs,
  endMs: calls[0]!.startMs + 50,
  calls,
  ...extra,
});
const batchOf = (chains: Chain[]): ChainBatch => ({
  chains,
  traceSummaries: [{ traceId: 'a'.repeat(32), startMs: 1, endMs: 2, spans: 8, services: ['ci/deployer', 'shop/cart'] }],
  traces: 1,
  spans: 8,
});

/**
 * A batch as the decoder gives it back: every optional field of a chain and call present,
 * undefined when absent (a chain's receivedMs too, which the backend sets; one hidden class for
 * all of them on the consumer's side); a source only with the fields it has.
 */
function asDecoded(batch: ChainBatch): ChainBatch {
  const call = (c: Call): Call => ({
    traceId: c.traceId, spanId: c.spanId, parentSpanId: c.parentSpanId, identity: c.identity, identityKind: c.identityKind,
    service: c.service, peer: c.peer, peerKind: c.peerKind, external: c.external, operation: c.operation, protocol: c.protocol,
    startMs: c.startMs, durationMs: c.durationMs, status: c.status, name: c.name, source: c.source,
    serverSpanId: c.serverSpanId, target: c.target, account: c.account, httpStatus: c.httpStatus, errorCode: c.errorCode,
    auditId: c.auditId, version: c.version, pathOperation: c.pathOperation,
  });
  const chains = batch.chains.map((ch) => ({ ...ch, calls: ch.calls.map(call), displayName: ch.displayName, receivedMs: ch.receivedMs }));
  return { ...batch, chains };
}

describe('batch codec', () => {
  it('carries every field of calls, chains and trace summaries', () => {
    const batch = batchOf([chain([fullCall], { displayName: 'Deployer' }), chain([bareCall, { ...bareCall, spanId: 'f'.repeat(16), source: { publicAddress: true } }])]);
    const decoded = createBatchDecoder().decode(createBatchEncoder().encode(batch));
    expect(decoded).toStrictEqual(asDecoded(batch));
    // Fields in one order whatever is present: one hidden class for every call; a source has its own fields only.
    const calls = decoded.chains.flatMap((c) => c.calls);
    for (const c of calls) expect(Object.keys(c)).toEqual(Object.keys(calls[0]!));
    // Plain objects to every reader (deep equality, JSON, spreading).
    for (const o of [...calls, ...decoded.chains]) {
      expect(Object.getPrototypeOf(o)).toBe(Object.prototype);
      expect(o.constructor).toBe(Object);
    }
    expect(Object.keys(decoded.chains[0]!)).toEqual(['traceId', 'identity', 'identityKind', 'startMs', 'endMs', 'calls', 'displayName', 'receivedMs']);
    expect(calls.map((c) => Object.keys(c.source).length)).toEqual([8, 0, 1]);
    // Absent fields stay absent in JSON (the API, the store).
    expect(JSON.parse(JSON.stringify(decoded))).toStrictEqual(batch);
  });

  it('carries whether a trace summary is a late part of its trace', () => {
    const batch = batchOf([]);
    const base = batch.traceSummaries![0]!;
    batch.traceSummaries = [base, { ...base, late: 'joins' }, { ...base, late: 'maybe' }, { ...base, late: 'fragment', services: [] }];
    expect(createBatchDecoder().decode(createBatchEncoder().encode(batch))).toStrictEqual(batch);
  });

  it('sends a repeated string once, and the consumer gets the same string back from its dictionary', () => {
    const encoder = createBatchEncoder();
    const decoder = createBatchDecoder();
    const first = encoder.encode(batchOf([chain([fullCall])]));
    const second = encoder.encode(batchOf([chain([{ ...fullCall, spanId: '9'.repeat(16) }])]));
    expect(first.adds).toContain('ListBuckets');
    expect(second.adds).toEqual([]);
    // Ids are never remembered: they travel with their batch.
    expect(second.literals).toContain('9'.repeat(16));
    decoder.decode(first);
    const call = decoder.decode(second).chains[0]!.calls[0]!;
    expect(call).toStrictEqual(asDecoded(batchOf([chain([{ ...fullCall, spanId: '9'.repeat(16) }])])).chains[0]!.calls[0]);
  });

  it('starts its dictionary over when full, and both sides stay in step', () => {
    const encoder = createBatchEncoder(100);
    const decoder = createBatchDecoder();
    let resets = 0;
    for (let i = 0; i < 50; i++) {
      // Two new strings per batch (operation and name): 100 in all, more than the dictionary holds.
      const batch = batchOf([chain([{ ...bareCall, operation: `SELECT t${i}`, name: `hostile ${i} \u0000 \u{1F600} __proto__` }])]);
      const encoded = encoder.encode(batch);
      if (encoded.reset) resets++;
      expect(decoder.decode(encoded)).toStrictEqual(asDecoded(batch));
    }
    expect(resets).toBeGreaterThan(0);
  });

  it('reads the chains of an opened batch later, after later batches and dictionary resets', () => {
    const encoder = createBatchEncoder(100);
    const decoder = createBatchDecoder();
    const batches = Array.from({ length: 50 }, (_, i) => batchOf([chain([{ ...bareCall, operation: `SELECT t${i}`, name: `late ${i}` }])]));
    const encoded = batches.map((b) => encoder.encode(b));
    expect(encoded.filter((e) => e.reset).length).toBeGreaterThan(0);
    // Opened in order (summaries read at once, chains left encoded), chains read in reverse order.
    const opened = encoded.map((e) => decoder.open(e));
    opened.forEach((o, i) => {
      expect(o.batch.chains).toEqual([]);
      expect(o.batch.traceSummaries).toStrictEqual(batches[i]!.traceSummaries);
      expect(o.batch.spans).toBe(batches[i]!.spans);
    });
    for (let i = opened.length - 1; i >= 0; i--) {
      const chains = opened[i]!.chains();
      expect(chains).toStrictEqual(asDecoded(batches[i]!).chains);
      expect(opened[i]!.batch.chains).toBe(chains);
      expect(opened[i]!.chains()).toBe(chains);
    }
  });

  it("sends a trace's id once for its chains and its summary, and a trace without chains its own", () => {
    const [a, b, c] = ['a', 'b', 'c'].map((x) => x.repeat(32));
    const summary = (traceId: string) => ({ traceId, startMs: 1, endMs: 2, spans: 4, services: ['shop/cart'] });
    const other = { ...fullCall, identity: 'svc:ci/deployer', spanId: '1'.repeat(16) };
    // Trace a: two chains (two identities); b: no chains; c: one chain, then a chain of a again
    // (not consecutive: an id of its own).
    const batch: ChainBatch = {
      chains: [chain([{ ...bareCall, traceId: a! }]), chain([{ ...other, traceId: a! }]), chain([{ ...bareCall, traceId: c! }]), chain([{ ...other, traceId: a! }])],
      traceSummaries: [summary(a!), summary(b!), summary(c!)],
      traces: 3,
      spans: 12,
    };
    const encoded = createBatchEncoder().encode(batch);
    const ids = encoded.literals.filter((s) => s.length === 32);
    expect(ids).toEqual([a, c, a, b]);
    expect(createBatchDecoder().decode(encoded)).toStrictEqual(asDecoded(batch));
  });

  it('reads back only the trace ids of batches, in step with the dictionary and with batches opened between them', () => {
    const encoder = createBatchEncoder(100);
    const decoder = createBatchDecoder();
    const summary = (traceId: string, services: string[]) => ({ traceId, startMs: 1, endMs: 2, spans: 4, services });
    let resets = 0;
    for (let i = 0; i < 60; i++) {
      const [a, b] = [`${i}a`.padStart(32, '0'), `${i}b`.padStart(32, '0')];
      // Trace a has a chain and several services (the ids are read past them), b none.
      const batch: ChainBatch = {
        chains: [chain([{ ...bareCall, traceId: a, operation: `SELECT t${i}` }])],
        traceSummaries: [summary(a, ['shop/cart', `svc ${i}`, 'x']), summary(b, [])],
        traces: 2,
        spans: 8,
      };
      const encoded = encoder.encode(batch);
      if (encoded.reset) resets++;
      if (i % 3 === 0) {
        expect(decoder.open(encoded).chains()).toStrictEqual(asDecoded(batch).chains);
      } else {
        expect(decoder.traceIds(encoded)).toEqual([a, b]);
      }
    }
    expect(resets).toBeGreaterThan(0);
  });

  it('encodes an empty batch', () => {
    const empty: ChainBatch = { chains: [], traceSummaries: [], traces: 0, spans: 0 };
    expect(createBatchDecoder().decode(createBatchEncoder().encode(empty))).toStrictEqual(empty);
  });
});

describe('batch codec, sources', () => {
  it('sends each distinct source once per batch; calls with the same source share one object', () => {
    const sources: SourceContext[] = [{}, { region: 'eu' }, { region: 'eu', publicAddress: true }, { region: 'eu', publicAddress: false }, { host: 'eu' }, fullSource];
    // Many calls, few distinct sources (copies, not the same objects), in a scattered order and over several chains.
    const calls = Array.from({ length: 3000 }, (_, i) => ({ ...bareCall, spanId: i.toString(16).padStart(16, '0'), source: { ...sources[(i * 7) % sources.length]! } }));
    const chains = Array.from({ length: 30 }, (_, i) => chain(calls.slice(i * 100, (i + 1) * 100)));
    const encoded = createBatchEncoder().encode(batchOf(chains));
    expect(encoded.refs[2]).toBe(sources.length);
    const decoded = createBatchDecoder().decode(encoded);
    expect(decoded).toStrictEqual(asDecoded(batchOf(chains)));
    const distinct = new Set(decoded.chains.flatMap((c) => c.calls.map((call) => call.source)));
    expect(distinct.size).toBe(sources.length);
  });

  it('finds a source shared by consecutive calls (as derive makes them) without mixing it up with the next', () => {
    const shared: SourceContext[] = [{ region: 'eu' }, { region: 'us' }, {}, fullSource];
    // Runs of one shared object, alternations, and an equal copy after its original.
    const order = [0, 0, 0, 1, 1, 0, 2, 3, 3, 2, 1, 0];
    const calls = order.map((k, i) => ({ ...bareCall, spanId: i.toString(16).padStart(16, '0'), source: shared[k]! }));
    calls.push({ ...bareCall, source: { ...shared[1]! } });
    const batch = batchOf([chain(calls.slice(0, 5)), chain(calls.slice(5))]);
    const encoded = createBatchEncoder().encode(batch);
    expect(encoded.refs[2]).toBe(shared.length);
    const decoded = createBatchDecoder().decode(encoded);
    expect(decoded).toStrictEqual(asDecoded(batch));
    expect(decoded.chains.flatMap((c) => c.calls.map((call) => call.source))).toEqual([...order.map((k) => shared[k]), shared[1]]);
  });

  it('numbers the sources of each batch afresh, the same source objects in another order', () => {
    const shared: SourceContext[] = [{ region: 'eu' }, { region: 'us' }, {}, fullSource, { host: 'h' }, { host: 'i' }, { host: 'j' }, { host: 'k' }, { host: 'l' }, { host: 'm' }];
    const encoder = createBatchEncoder();
    const decoder = createBatchDecoder();
    // More objects than the encoder remembers by identity, met again after others, in both batches.
    for (const order of [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 9, 3], [9, 8, 3, 3, 1, 0, 7, 6, 5, 4, 2, 9, 0]]) {
      const calls = order.map((k, i) => ({ ...bareCall, spanId: i.toString(16).padStart(16, '0'), source: shared[k]! }));
      const batch = batchOf([chain(calls.slice(0, 4)), chain(calls.slice(4))]);
      const encoded = encoder.encode(batch);
      expect(encoded.refs[2]).toBe(new Set(order).size);
      const decoded = decoder.decode(encoded);
      expect(decoded).toStrictEqual(asDecoded(batch));
      expect(decoded.chains.flatMap((c) => c.calls.map((call) => call.source))).toEqual(order.map((k) => shared[k]));
    }
  });

  it('keeps sources apart that differ in one field, however many there are', () => {
    const calls = Array.from({ length: 5000 }, (_, i) => ({ ...bareCall, source: { region: 'eu', clientAddress: `10.0.${i >> 8}.${i & 255}`, publicAddress: i % 3 === 0 } }));
    const batch = batchOf([chain(calls)]);
    const encoder = createBatchEncoder();
    const decoder = createBatchDecoder();
    // Twice: the second batch reuses the encoder's index of sources.
    for (let i = 0; i < 2; i++) {
      const encoded = encoder.encode(batch);
      expect(encoded.refs[2]).toBe(5000);
      expect(decoder.decode(encoded)).toStrictEqual(asDecoded(batch));
    }
  });
});
