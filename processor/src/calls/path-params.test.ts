import { describe, expect, it } from 'vitest';
import { applyPathParameters, createPathParameterLearner, PARAM_PLACEHOLDER } from './path-params.js';

const PEER = 'users-api';

describe('learned path parameters', () => {
  it('makes a position a parameter once `threshold` distinct values were seen under one prefix and peer', () => {
    const l = createPathParameterLearner({ threshold: 5 });
    const names = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace'];
    const ops = names.map((n, i) => l.template(PEER, `GET /users/${n}/profile`, 1000 + i));
    expect(ops.slice(0, 4)).toEqual(names.slice(0, 4).map((n) => `GET /users/${n}/profile`));
    expect(ops.slice(4)).toEqual(Array(3).fill(`GET /users/${PARAM_PLACEHOLDER}/profile`));
    expect(l.takeLearned()).toEqual([{ peer: PEER, method: 'GET', segments: 4, prefix: '/users', learnedMs: 1004 }]);
    expect(l.takeLearned()).toEqual([]);
    // The old values are covered too once the position is a parameter.
    expect(l.template(PEER, 'GET /users/alice/profile', 2000)).toBe(`GET /users/${PARAM_PLACEHOLDER}/profile`);
    expect(l.stats().parameters).toBe(1);
  });

  it('keeps peers, methods, path lengths and prefixes apart', () => {
    const l = createPathParameterLearner({ threshold: 3 });
    for (const n of ['a1', 'b1', 'c1']) l.template(PEER, `GET /users/${n}/profile`, 0);
    expect(l.template('other-api', 'GET /users/zed/profile', 0)).toBe('GET /users/zed/profile');
    expect(l.template(PEER, 'DELETE /users/zed/profile', 0)).toBe('DELETE /users/zed/profile');
    expect(l.template(PEER, 'GET /users/zed', 0)).toBe('GET /users/zed');
    expect(l.template(PEER, 'GET /teams/zed/profile', 0)).toBe('GET /teams/zed/profile');
    expect(l.template(PEER, 'GET /users/zed/profile', 0)).toBe(`GET /users/${PARAM_PLACEHOLDER}/profile`);
  });

  it('folds the positions after a learned one under its placeholder', () => {
    const l = createPathParameterLearner({ threshold: 3 });
    const repos = ['web', 'api', 'docs', 'infra'];
    const out = repos.map((r, i) => l.template('registry', `GET /v2/${r}/blobs/layer${'abcdefgh'[i]}`, 0));
    // The repository position is learned at the third repository; the layer names under it are
    // then counted under `/v2/{param}/blobs` and need three of their own.
    expect(out[2]).toBe(`GET /v2/${PARAM_PLACEHOLDER}/blobs/layerc`);
    expect(l.template('registry', 'GET /v2/ops/blobs/layerx', 0)).toBe(`GET /v2/${PARAM_PLACEHOLDER}/blobs/${PARAM_PLACEHOLDER}`);
  });

  it('keeps endpoints side by side under one prefix apart while they are fewer than the threshold', () => {
    const l = createPathParameterLearner({ threshold: 5 });
    const endpoints = ['users', 'orders', 'items', 'carts'];
    for (let round = 0; round < 10; round++) for (const e of endpoints) expect(l.template('shop', `GET /api/${e}`, round)).toBe(`GET /api/${e}`);
    expect(l.stats().parameters).toBe(0);
    // The fifth name under `/api` makes the position a parameter: the documented limit.
    expect(l.template('shop', 'GET /api/admin', 0)).toBe(`GET /api/${PARAM_PLACEHOLDER}`);
  });

  it('does not touch operations that are not METHOD /path, nor placeholders and route templates', () => {
    const l = createPathParameterLearner({ threshold: 2 });
    for (let i = 0; i < 5; i++) {
      expect(l.template(PEER, `SELECT orders${i}`, 0)).toBe(`SELECT orders${i}`);
      expect(l.template(PEER, `GET /users/{id}/x${i}`, 0)).toBe(i === 0 ? 'GET /users/{id}/x0' : `GET /users/{id}/${PARAM_PLACEHOLDER}`);
    }
    expect(l.template(PEER, 'GET /users/{id}', 0)).toBe('GET /users/{id}');
  });

  it('stays within maxGroups, counting the evicted groups', () => {
    const l = createPathParameterLearner({ threshold: 5_000, maxGroups: 100 });
    // Groups: the first segment's (prefix ''), and one per `/g<i>` prefix for the second segment.
    for (let i = 0; i < 1000; i++) l.template(PEER, `GET /g${i}/x`, 0);
    expect(l.stats().groups).toBe(100);
    expect(l.stats().evictedGroups).toBe(1001 - 100);
  });

  it('stays within maxParameters, counting the positions refused', () => {
    const l = createPathParameterLearner({ threshold: 3, maxParameters: 2 });
    // `PUT /<p>/<v>`: the second position of `/a` and of `/b` is learned, of `/c` refused (the
    // first position sees only a, b and c: at c it is learned too, so use DELETE apart).
    for (const p of ['a', 'b']) for (const v of ['1x', '2x', '3x']) l.template(PEER, `PUT /${p}/${v}`, 0);
    for (const v of ['1x', '2x', '3x']) l.template(PEER, `DELETE /c/${v}`, 0);
    expect(l.stats().parameters).toBe(2);
    expect(l.stats().refusedParameters).toBe(1);
    expect(l.template(PEER, 'DELETE /c/9x', 0)).toBe('DELETE /c/9x');
    expect(l.template(PEER, 'PUT /a/9x', 0)).toBe(`PUT /a/${PARAM_PLACEHOLDER}`);
  });

  it('restores persisted positions, so a restart templates as before', () => {
    const first = createPathParameterLearner({ threshold: 3 });
    for (const n of ['a', 'b', 'c']) first.template(PEER, `GET /users/${n}/profile`, 5);
    const saved = first.takeLearned();
    const second = createPathParameterLearner({ threshold: 3 });
    second.restore(saved);
    expect(second.template(PEER, 'GET /users/zed/profile', 9)).toBe(`GET /users/${PARAM_PLACEHOLDER}/profile`);
    expect(second.takeLearned()).toEqual([]);
  });
});

describe('applying learned positions to operations learned before', () => {
  const users = { peer: PEER, method: 'GET', segments: 4, prefix: '/users', learnedMs: 0 };
  const repos = { peer: 'registry', method: 'GET', segments: 5, prefix: '/v2', learnedMs: 0 };
  const layers = { peer: 'registry', method: 'GET', segments: 5, prefix: `/v2/${PARAM_PLACEHOLDER}/blobs`, learnedMs: 0 };

  it('folds the literal at a learned position, following placeholders in prefixes, and checks method, length and peer', () => {
    expect(applyPathParameters([users], 'GET /users/alice/profile')).toBe(`GET /users/${PARAM_PLACEHOLDER}/profile`);
    expect(applyPathParameters([users], 'GET /users/alice/profile', PEER)).toBe(`GET /users/${PARAM_PLACEHOLDER}/profile`);
    expect(applyPathParameters([users], 'GET /users/alice/profile', 'other')).toBeUndefined();
    expect(applyPathParameters([users], 'PUT /users/alice/profile')).toBeUndefined();
    expect(applyPathParameters([users], 'GET /users/alice')).toBeUndefined();
    expect(applyPathParameters([users], `GET /users/${PARAM_PLACEHOLDER}/profile`)).toBeUndefined();
    expect(applyPathParameters([users], 'SELECT users')).toBeUndefined();
    expect(applyPathParameters([layers, repos], 'GET /v2/web/blobs/layer1')).toBe(`GET /v2/${PARAM_PLACEHOLDER}/blobs/${PARAM_PLACEHOLDER}`);
  });

  it('gives the learner\'s own template for what it learned', () => {
    const l = createPathParameterLearner({ threshold: 3 });
    const before = ['alice', 'bob'].map((n) => l.template(PEER, `GET /users/${n}/profile`, 0));
    const after = l.template(PEER, 'GET /users/carol/profile', 0);
    const learned = l.takeLearned();
    expect(before.map((op) => applyPathParameters(learned, op, PEER))).toEqual([after, after]);
  });
});
