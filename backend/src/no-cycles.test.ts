import { fileURLToPath } from 'node:url';
import madge from 'madge';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('.', import.meta.url));

describe('module graph of backend/src', () => {
  it('has no import cycle, type-only imports included', async () => {
    const graph = await madge(SRC, {
      fileExtensions: ['ts'],
      tsConfig: fileURLToPath(new URL('../tsconfig.json', import.meta.url)),
      // Type imports tie modules together too: a cycle through them is still a cycle of ideas.
      detectiveOptions: { ts: { skipTypeImports: false }, tsx: { skipTypeImports: false } },
      excludeRegExp: [/\.test\.ts$/, /[\\/]testdata[\\/]/, /[\\/]ui[\\/]/],
    });
    // Every source file is in the graph (the resolver maps `./x.js` imports to `x.ts`).
    const files = Object.keys(graph.obj());
    expect(files).toContain('detect/detection.ts');
    expect(graph.obj()['detect/detection.ts']).toContain('store/index.ts');
    expect(graph.circular()).toEqual([]);
  });
});
