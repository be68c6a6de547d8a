import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (pkg: string) => fileURLToPath(new URL(`./${pkg}/src/index.ts`, import.meta.url));

export default defineConfig({
  resolve: {
    // Tests run the TypeScript sources of the workspaces directly; `npm run build` makes dist/.
    alias: {
      '@conduct/proto': src('proto'),
      '@conduct/processor': src('processor'),
      '@conduct/backend': src('backend'),
    },
  },
  test: {
    include: ['{proto,processor,backend}/src/**/*.test.ts', 'test/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
