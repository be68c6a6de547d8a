import type { Receiver } from './model.js';

/**
 * A receiver from its start and stop steps, each run at most once however often it is called;
 * stop waits for a start under way (failed or not) before it runs, and is safe without start.
 */
export function onceEach(start: () => Promise<string>, stop: () => Promise<void>): Receiver {
  let starting: Promise<string> | undefined;
  let stopping: Promise<void> | undefined;
  return {
    start() {
      starting ??= start();
      return starting;
    },
    stop() {
      stopping ??= (async () => {
        if (starting) await starting.catch(() => undefined);
        await stop();
      })();
      return stopping;
    },
  };
}
