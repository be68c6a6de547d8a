import { describe, expect, it } from 'vitest';
import type { Alert } from '../alerts/model.js';
import { chain, traceId } from '../store/testdata/fixtures.js';
import { ACTS_THROUGH, compareWithBaseline, MIN_VOLUME_DELTA, windowGraph, type GraphJson } from './graph-compare.js';

const ID = 'svc:shop/frontend';
const WHO = { id: ID, label: ID };
const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 10, 1);
const iso = (ms: number) => new Date(ms).toISOString();

/** A learned graph as detection answers it: names as node ids, edges with counts over 10 hours. */
function learned(edges: [peer: string, operation: string, count: number][], firstMs = T0, lastMs = T0 + 10 * HOUR): GraphJson {
  const peers = [...new Set(edges.map((e) => e[0]))];
  return {
    nodes: [
      { id: ID, kind: 'identity', label: ID },
      { id: 'shop/frontend', kind: 'service', label: 'shop/frontend' },
      ...peers.map((p) => ({ id: p, kind: 'peer', label: p, peerKind: 'service' })),
    ],
    edges: [
      { from: ID, to: 'shop/frontend', operation: ACTS_THROUGH, count: edges.reduce((n, e) => n + e[2], 0), firstSeen: iso(firstMs), lastSeen: iso(lastMs) },
      ...edges.map(([peer, operation, count]) => ({ from: 'shop/frontend', to: peer, operation, count, firstSeen: iso(firstMs), lastSeen: iso(lastMs) })),
    ],
  };
}

function alert(id: string, trace: string): Alert {
  return {
    id, identity: ID, identityKind: 'workload', detector: 'new-peer', detectors: ['new-peer'], findings: [], severity: 'high', score: 80, title: 't', explanation: 'e',
    traceId: trace, spanIds: [], eventTime: iso(T0), firstSeen: iso(T0), lastSeen: iso(T0), count: 1, status: 'open',
    techniques: [], links: { trace: '' },
  };
}

describe('graph comparison', () => {
  // The window: the hour after the 10 learned hours.
  const win = { sinceMs: T0 + 10 * HOUR, untilMs: T0 + 11 * HOUR };
  const at = (minute: number) => win.sinceMs + minute * 60_000;

  it('finds edges new in the window, vanished from it and changed in volume, with their traces and alerts', () => {
    // Baseline rates per hour: checkout 3, payments 4, cart 10, search 1 (rare).
    const base = learned([
      ['checkout', 'POST /checkout', 30],
      ['payments', 'Charge', 40],
      ['cart', 'GET /cart', 100],
      ['search', 'GET /search', 10],
    ]);
    const chains = [
      // checkout as usual (3 calls), cart far above its 10 an hour, payments gone, exfil new.
      ...[0, 1, 2].map((i) => chain(traceId(i + 1), ID, [['checkout', 'POST /checkout']], at(i))),
      ...Array.from({ length: 40 }, (_, i) => chain(traceId(100 + i), ID, [['cart', 'GET /cart']], at(10 + i / 2))),
      chain(traceId(999), ID, [['exfil.example.com', 'PUT /upload']], at(30)),
    ];
    const result = compareWithBaseline(WHO, base, chains, win, [alert('a-exfil', traceId(999)), alert('a-other', traceId(555))]);
    const by = (to: string) => result.edges.find((e) => e.to === to)!;
    expect(by('checkout')).toMatchObject({ change: 'same', count: 3, baselineCount: 30, expected: 3 });
    expect(by('cart')).toMatchObject({ change: 'up', count: 40, expected: 10 });
    expect(by('payments')).toMatchObject({ change: 'vanished', count: 0, expected: 4 });
    // A rare edge (one call an hour) missing from an hour is not "vanished".
    expect(by('search')).toMatchObject({ change: 'idle', count: 0, expected: 1 });
    expect(by('exfil.example.com')).toMatchObject({ change: 'new', count: 1, baselineCount: 0, traces: [traceId(999)], alerts: ['a-exfil'] });
    // Traces behind an edge are the newest few; the identity's own edge counts every call.
    expect(by('cart').traces).toHaveLength(10);
    expect(result.edges.find((e) => e.from === ID)).toMatchObject({ to: 'shop/frontend', operation: ACTS_THROUGH, count: 44 });
    expect(result.nodes.map((n) => n.id)).toEqual(expect.arrayContaining([ID, 'shop/frontend', 'exfil.example.com', 'payments']));
  });

  it('reports a drop only when it is larger than the noise', () => {
    const base = learned([['cart', 'GET /cart', 100]]);
    const few = [0, 1].map((i) => chain(traceId(i + 1), ID, [['cart', 'GET /cart']], at(i)));
    expect(compareWithBaseline(WHO, base, few, win, []).edges.find((e) => e.to === 'cart')!.change).toBe('down');
    const small = learned([['cart', 'GET /cart', 6 * 10]]);
    const two = [0, 1, 2].map((i) => chain(traceId(i + 1), ID, [['cart', 'GET /cart']], at(i)));
    // 3 calls against 6 expected: half, but fewer than MIN_VOLUME_DELTA calls apart.
    expect(6 - 3).toBeLessThan(MIN_VOLUME_DELTA);
    expect(compareWithBaseline(WHO, small, two, win, []).edges.find((e) => e.to === 'cart')!.change).toBe('same');
  });

  it('counts an edge first learned inside the window as new, and ignores calls outside the window', () => {
    const base = learned([['cart', 'GET /cart', 5]], win.sinceMs + 60_000, win.sinceMs + 120_000);
    const chains = [chain(traceId(1), ID, [['cart', 'GET /cart']], at(1)), chain(traceId(2), ID, [['cart', 'GET /cart']], win.sinceMs - HOUR)];
    const cart = compareWithBaseline(WHO, base, chains, win, []).edges.find((e) => e.to === 'cart')!;
    expect(cart).toMatchObject({ change: 'new', count: 1 });
  });

  it('matches the observed graph, whose node ids carry prefixes, by labels', () => {
    const observed: GraphJson = {
      nodes: [
        { id: `identity:${ID}`, kind: 'identity', label: ID },
        { id: 'service:shop/frontend', kind: 'service', label: 'shop/frontend' },
        { id: 'peer:cart', kind: 'peer', label: 'cart' },
      ],
      edges: [
        { from: `identity:${ID}`, to: 'service:shop/frontend', operation: ACTS_THROUGH, count: 10, firstSeen: iso(T0), lastSeen: iso(T0 + 10 * HOUR) },
        { from: 'service:shop/frontend', to: 'peer:cart', operation: 'GET /cart', count: 10, firstSeen: iso(T0), lastSeen: iso(T0 + 10 * HOUR) },
      ],
    };
    const result = compareWithBaseline(WHO, observed, [chain(traceId(1), ID, [['cart', 'GET /cart']], at(1))], win, []);
    expect(result.edges.map((e) => [e.to, e.change])).toEqual([
      ['shop/frontend', 'same'],
      ['cart', 'same'],
    ]);
  });

  it('draws the window alone as a graph of its calls', () => {
    const g = windowGraph(WHO, [chain(traceId(1), ID, [['cart', 'GET /cart'], ['cart', 'GET /cart'], ['checkout', 'POST /checkout']], at(1))], win);
    expect(g.edges.map((e) => [e.from, e.to, e.operation, e.count])).toEqual([
      [ID, 'shop/frontend', ACTS_THROUGH, 3],
      ['shop/frontend', 'cart', 'GET /cart', 2],
      ['shop/frontend', 'checkout', 'POST /checkout', 1],
    ]);
  });
});
