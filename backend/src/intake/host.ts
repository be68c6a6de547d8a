import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createPipelineThread, ReceiverConfigError, type PipelineThread, type PipelineThreadOptions } from '@conduct/processor';
import { MEMORY_CHECK_INTERVAL_MS } from '../journal/index.js';
import type { StorageAvailability } from '../store/index.js';
import type { IntakeData, IntakeNote, IntakeReceiver, IntakeRequest } from './protocol.js';

export interface IntakeThreadOptions extends Omit<PipelineThreadOptions, 'extension' | 'onExtensionMessage'> {
  /** The journal and the receivers the thread runs. */
  intake: IntakeData;
  /** The store's availability, relayed to the thread's storage gate (IntakeData.storageGate). */
  availability?: StorageAvailability;
  /** This thread's live heap, relayed to the journal's memory check. */
  mainHeap: () => number;
}

export interface IntakeThread extends PipelineThread {
  /** Starts one of IntakeData.receivers on the thread; resolves with its bound `host:port`. */
  listen(receiver: IntakeReceiver): Promise<string>;
}

/** The compiled intake module next to this one, or the package's build when running from sources. */
function intakeUrl(): URL {
  const here = new URL('./thread.js', import.meta.url);
  if (existsSync(fileURLToPath(here))) return here;
  return new URL('../../dist/intake/thread.js', import.meta.url);
}

/**
 * The pipeline thread with the intake on it (thread.ts): the journal, the storage gate and the
 * OTLP receivers run there; this thread consumes the batches (the store, detection) and relays
 * what the intake needs from here: its live heap and the store's availability, every
 * MEMORY_CHECK_INTERVAL_MS (the journal reads the heap no more often than that).
 */
export function createIntakeThread(options: IntakeThreadOptions): IntakeThread {
  const { intake, availability, mainHeap, ...pipeline } = options;
  const thread = createPipelineThread({ ...pipeline, extension: { url: intakeUrl(), data: intake } });
  const note = (n: IntakeNote) => thread.notify(n);
  let storage = { available: true, retryAfterMs: 0 };
  const relay = () => {
    if (intake.journal.maxMemoryBytes > 0) note({ t: 'main-heap', bytes: mainHeap() });
    if (availability) {
      const now = { available: availability.available(), retryAfterMs: availability.retryAfterMs() };
      if (now.available !== storage.available || now.retryAfterMs !== storage.retryAfterMs) note({ t: 'storage', ...now });
      storage = now;
    }
  };
  const timer = setInterval(relay, MEMORY_CHECK_INTERVAL_MS);
  timer.unref();
  return {
    ...thread,
    async listen(receiver) {
      try {
        return (await thread.request({ t: 'listen', receiver } satisfies IntakeRequest)) as string;
      } catch (err) {
        // A receiver's configuration it could not start with (its TLS files): the same error as on this thread.
        if (err instanceof Error && err.name === 'ReceiverConfigError') throw new ReceiverConfigError(err.message);
        throw err;
      }
    },
    stop: async () => {
      clearInterval(timer);
      await thread.stop();
    },
  };
}
