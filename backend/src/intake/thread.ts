/**
 * The intake, run on the pipeline thread (a WorkerExtension the host names by URL, see host.ts):
 * the OTLP receivers and the journal, so that a request is read, decoded, journaled and answered
 * on one thread, never waiting behind the main thread's store writes. The main thread keeps the
 * store, detection and the API; batches of chains go there and come back as `consumed`, which
 * settles their requests in the journal.
 */
import {
  createGrpcReceiver,
  createHttpReceiver,
  type Receiver,
  type TraceIngest,
  type WorkerExtension,
  type WorkerExtensionContext,
} from '@conduct/processor';
import { createJournal } from '../journal/index.js';
import { refuseWhileStorageDown } from '../engine/storage-gate.js';
import type { IntakeData, IntakeNote, IntakeRequest } from './protocol.js';

export function createWorkerExtension(context: WorkerExtensionContext): WorkerExtension {
  const { registry, logger } = context;
  const data = context.data as IntakeData;
  let mainHeap = 0;
  const storage = { available: true, retryAfterMs: 0 };
  const journal = createJournal({
    ...(data.journal.dir !== undefined ? { dir: data.journal.dir } : {}),
    registry,
    logger,
    maxMemoryBytes: data.journal.maxMemoryBytes,
    // Both threads' live data (see createLiveHeapReader), not garbage awaiting a collection.
    heapUsed: () => mainHeap + context.heapUsed(),
    ...(data.journal.decodeLimits ? { decodeLimits: data.journal.decodeLimits } : {}),
  });
  let ingest: TraceIngest | undefined;
  const receivers: Receiver[] = [];

  const listen = (which: IntakeRequest['receiver']): Promise<string> => {
    if (!ingest) throw new Error('the intake has not started');
    const deps = { registry, logger };
    const receiver =
      which === 'grpc'
        ? createGrpcReceiver(data.receivers.grpc!, ingest, deps)
        : createHttpReceiver(data.receivers.http!, ingest, deps);
    receivers.push(receiver);
    return receiver.start();
  };

  return {
    consumer: (host) => journal.consumer(host),
    onBatch: (batch) => journal.onBatch(batch),

    async start(local) {
      // What was acknowledged and not stored before the last stop goes through the pipeline first.
      await journal.replay(local);
      const availability = data.storageGate
        ? { available: () => storage.available, retryAfterMs: () => storage.retryAfterMs, stopRetrying() {} }
        : undefined;
      ingest = refuseWhileStorageDown(journal.ingest(local), availability, registry);
      return ingest;
    },

    async request(message) {
      const request = message as IntakeRequest;
      if (request.t === 'listen') return listen(request.receiver);
      throw new Error(`unknown intake request ${JSON.stringify(request)}`);
    },

    message(message) {
      const note = message as IntakeNote;
      if (note.t === 'main-heap') mainHeap = note.bytes;
      else if (note.t === 'storage') {
        storage.available = note.available;
        storage.retryAfterMs = note.retryAfterMs;
      }
    },

    // Receivers first (in-flight requests finish), so that nothing new comes in while the pipeline drains.
    async close() {
      await Promise.all(receivers.splice(0).map((r) => r.stop()));
    },

    stop: () => journal.stop(),
  };
}
