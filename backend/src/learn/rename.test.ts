import { describe, expect, it } from 'vitest';
import type { Chain } from '@conduct/processor';
import { call, traceId } from '../store/testdata/fixtures.js';
import { createBaseline, has, learnChain, takeDirty, transitionKey, type LearningOptions } from './baseline.js';
import { renameOperations } from './rename.js';
import { chainShape, shapeKey } from './shape.js';

const OPTS: LearningOptions = { minCalls: 1, periodMs: 0, forgetAfterMs: 0 };
const T = 'GET /users/{param}/profile';

function chainOf(n: number, ops: string[], at: number): Chain {
  const calls = ops.map((operation, i) => call({ traceId: traceId(n), identity: 'svc:s', peer: 'users-api', operation, startMs: at + i }));
  return { traceId: traceId(n), identity: 'svc:s', identityKind: 'workload', startMs: at, endMs: at + ops.length, calls };
}

const toTemplate = (op: string, peer?: string) =>
  /^GET \/users\/[a-z]+\/profile$/.test(op) && (peer === undefined || peer === 'users-api') ? T : undefined;

describe('renaming operations in a baseline', () => {
  it('renames operations, transitions, shapes and edges, merging what ends up under one key', () => {
    const b = createBaseline('svc:s', 'workload');
    learnChain(b, chainOf(1, ['GET /health', 'GET /users/alice/profile'], 1000), OPTS);
    learnChain(b, chainOf(2, ['GET /health', 'GET /users/bob/profile'], 5000), OPTS);
    takeDirty(b, () => undefined);

    expect(renameOperations(b, toTemplate)).toBe(2 + 4 + 2 + 2);
    expect([...b.entries.operation.keys()].sort()).toEqual(['GET /health', T]);
    expect(b.entries.operation.get(T)).toMatchObject({ count: 2, firstMs: 1001, lastMs: 5001 });
    expect(has(b, 'transition', transitionKey('GET /health', T))).toBe(true);
    expect(has(b, 'transition', transitionKey(T, '(end)'))).toBe(true);
    expect(b.entries.transition.get(transitionKey('GET /health', T))?.count).toBe(2);
    expect([...b.entries.shape.keys()]).toEqual([shapeKey(chainShape(['GET /health', T]))]);
    expect([...b.entries.edge.keys()].some((k) => JSON.parse(k)[2] === T)).toBe(true);
    // What changed is written with the next checkpoint: the new keys whole, the old ones removed.
    const dirty = new Set<string>();
    takeDirty(b, (kind, key) => void (kind === 'operation' && dirty.add(key)));
    expect(dirty).toEqual(new Set([T]));
    expect(b.removed.operation).toEqual(new Set(['GET /users/alice/profile', 'GET /users/bob/profile']));
    expect(renameOperations(b, toTemplate)).toBe(0);
  });

  it('renames an edge only when the rename accepts its peer', () => {
    const b = createBaseline('svc:s', 'workload');
    learnChain(b, chainOf(3, ['GET /users/alice/profile'], 1000), OPTS);
    renameOperations(b, (op, peer) => (peer === undefined ? toTemplate(op) : undefined));
    expect(has(b, 'operation', T)).toBe(true);
    expect([...b.entries.edge.keys()].map((k) => JSON.parse(k)[2])).toEqual(['GET /users/alice/profile']);
  });
});
