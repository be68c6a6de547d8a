/**
 * A pipeline thread extension for thread.test.ts (plain JavaScript: the worker runs the build and
 * loads this by URL). It counts what passes through it, marks every trace of each batch as
 * replayed, answers requests, echoes messages, records the order of its stop, and passes each batch
 * on to the host only after a timer (so the host has consumed it before the pipeline asks).
 */
export function createWorkerExtension(context) {
  const { data } = context;
  if (data.failStart) {
    return {
      async start() {
        throw new Error(`cannot start: ${data.failStart}`);
      },
    };
  }
  let accepted = 0;
  let batches = 0;
  const order = [];
  return {
    consumer: (host) => ({
      async consume(batch) {
        await new Promise((resolve) => setTimeout(resolve, data.delayMs ?? 0));
        await host.consume(batch);
        order.push('consumed');
      },
    }),
    onBatch(batch) {
      batches++;
      const ids = [...batch.traceIds];
      batch.replayed = ids;
      batch.replayedReceivedMs = new Map(ids.map((id) => [id, 1_000]));
    },
    async start(local) {
      return {
        keep: local.keep,
        accept(request, raw) {
          accepted++;
          return local.accept(request, raw);
        },
        acceptRaw(raw, limits, onAccepted) {
          accepted++;
          return local.acceptRaw(raw, limits, onAccepted);
        },
      };
    },
    async request(message) {
      if (message.fail) {
        const err = new Error('the fixture refuses');
        err.name = 'FixtureError';
        throw err;
      }
      return { echo: message, accepted, batches };
    },
    message(message) {
      context.post({ got: message });
    },
    async close() {
      order.push('close');
    },
    async stop() {
      order.push('stop');
      context.post({ order });
    },
  };
}
