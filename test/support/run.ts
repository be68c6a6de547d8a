import { afterEach } from 'vitest';
import type { ConfigInput } from '@conduct/backend';
import { startTestConduct, type TestConduct } from './conduct.js';
import { Traffic } from './traffic.js';

/**
 * A conduct and its OTLP traffic per test, closed and removed after each test of the file that
 * calls this (registers the `afterEach`).
 */
export function conductPerTest(config: ConfigInput): () => Promise<{ conduct: TestConduct; traffic: Traffic }> {
  let run: { conduct: TestConduct; traffic: Traffic } | undefined;
  afterEach(async () => {
    const done = run;
    run = undefined;
    await done?.traffic.close();
    await done?.conduct.dispose();
  });
  return async () => {
    const conduct = await startTestConduct(config);
    run = { conduct, traffic: new Traffic(conduct) };
    return run;
  };
}
