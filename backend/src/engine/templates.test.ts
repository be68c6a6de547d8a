import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { PARAM_PLACEHOLDER, type Chain, type LearnedPathParameter } from '@conduct/processor';
import { openSqliteBackend } from '../store/index.js';
import { call, tempDir, traceId } from '../store/testdata/fixtures.js';
import { createEngine, createOperationTemplater } from './index.js';

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const T0 = 1_700_000_000_000;

/** One chain of one call whose operation came from a raw URL path. */
function pathChain(n: number, operation: string, pathOperation = true): Chain {
  const c = call({ traceId: traceId(n), identity: 'svc:sync', peer: 'users-api', operation, startMs: T0 + n, ...(pathOperation ? { pathOperation } : {}) });
  return { traceId: c.traceId, identity: c.identity, identityKind: 'workload', startMs: c.startMs, endMs: c.startMs + 1, calls: [c] };
}

async function started(path: string) {
  const storage = await openSqliteBackend({ path });
  const registry = new Registry();
  const templater = await createOperationTemplater({ store: storage.templates, registry, threshold: 5 });
  const engine = createEngine({ store: storage, registry, templater });
  const learned: LearnedPathParameter[][] = [];
  const analysed: string[] = [];
  engine.addAnalyser({
    name: 'spy',
    analyse: (chains) => void analysed.push(...chains.flatMap((c) => c.calls.map((x) => x.operation))),
    pathParametersLearned: (p) => void learned.push([...p]),
  });
  return { storage, registry, engine, learned, analysed };
}

describe('learned path parameters in the engine', () => {
  it('templates path operations before storing and analysing, announces what it learned, and templates as before after a restart', async () => {
    const t = tempDir('conduct-templates-');
    cleanups.push(t.cleanup);
    const path = join(t.dir, 'db.sqlite');
    const first = await started(path);
    const names = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank'];
    for (const [i, n] of names.entries()) await first.engine.consume({ chains: [pathChain(i + 1, `GET /users/${n}/profile`)], traces: 1, spans: 1 });
    const template = `GET /users/${PARAM_PLACEHOLDER}/profile`;
    expect(first.analysed).toEqual([...names.slice(0, 4).map((n) => `GET /users/${n}/profile`), template, template]);
    expect((await first.storage.chainReader.traceChains(traceId(6)))[0]!.calls[0]!.operation).toBe(template);
    expect(first.learned).toEqual([[{ peer: 'users-api', method: 'GET', segments: 4, prefix: '/users', learnedMs: T0 + 5 }]]);
    expect(await first.registry.metrics()).toMatch(/^conduct_operation_path_parameters 1$/m);
    // An operation from http.route (no pathOperation) is left as it is.
    await first.engine.consume({ chains: [pathChain(7, 'GET /users/zed/profile', false)], traces: 1, spans: 1 });
    expect(first.analysed.at(-1)).toBe('GET /users/zed/profile');
    await first.storage.close();

    const second = await started(path);
    cleanups.push(() => second.storage.close());
    await second.engine.consume({ chains: [pathChain(8, 'GET /users/zed/profile')], traces: 1, spans: 1 });
    expect(second.analysed).toEqual([template]);
    expect(second.learned).toEqual([]);
  });

  it('keeps a batch going when the positions cannot be written, and writes them with a later batch', async () => {
    const t = tempDir('conduct-templates-');
    cleanups.push(t.cleanup);
    const storage = await openSqliteBackend({ path: join(t.dir, 'db.sqlite') });
    cleanups.push(() => storage.close());
    let failing = true;
    const store = {
      loadPathParameters: () => storage.templates.loadPathParameters(),
      savePathParameters: (p: readonly LearnedPathParameter[]) => (failing ? Promise.reject(new Error('disk full')) : storage.templates.savePathParameters(p)),
    };
    const registry = new Registry();
    const templater = await createOperationTemplater({ store, registry, threshold: 2 });
    const engine = createEngine({ store: storage, registry, templater });
    await engine.consume({ chains: [pathChain(1, 'GET /a/x1'), pathChain(2, 'GET /a/x2')], traces: 2, spans: 2 });
    expect(engine.stats().chains).toBe(2);
    expect(await registry.metrics()).toMatch(/^conduct_operation_path_parameter_write_errors_total 1$/m);
    expect(await storage.templates.loadPathParameters()).toEqual([]);
    failing = false;
    await engine.consume({ chains: [pathChain(3, 'GET /a/x3')], traces: 1, spans: 1 });
    expect((await storage.templates.loadPathParameters()).map((p) => p.prefix)).toEqual(['/a']);
  });
});
