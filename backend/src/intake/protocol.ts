import type { GrpcReceiverConfig, HttpReceiverConfig } from '@conduct/processor';
import type { DecodeLimits } from '@conduct/proto';

/**
 * What the intake on the pipeline thread (thread.ts) is started with, and the messages between it
 * and its host (host.ts). Everything here is structured-cloned.
 */
export interface IntakeData {
  journal: {
    /** The journal's directory; absent: a temporary one, removed on stop. */
    dir?: string;
    /** limits.maxMemoryBytes: both threads' live heaps above it refuse requests (0: off). */
    maxMemoryBytes: number;
    /** Limits journaled bodies are decoded with on replay. */
    decodeLimits?: Partial<DecodeLimits>;
  };
  /** Requests are refused while the host says the storage is out of reach (a store that can be). */
  storageGate: boolean;
  /** The OTLP receivers this thread serves (absent ones are served by the host, or off). */
  receivers: { grpc?: GrpcReceiverConfig; http?: HttpReceiverConfig };
}

export type IntakeReceiver = keyof IntakeData['receivers'];

/** Host → thread, one way (PipelineThread.notify). */
export type IntakeNote =
  /** The storage's availability changed (StorageAvailability). */
  | { t: 'storage'; available: boolean; retryAfterMs: number }
  /** The main thread's live heap, bytes: counted with this thread's against limits.maxMemoryBytes. */
  | { t: 'main-heap'; bytes: number };

/** Host → thread, answered (PipelineThread.request). */
export type IntakeRequest =
  /** Starts a receiver; answered with its bound `host:port`. */
  { t: 'listen'; receiver: IntakeReceiver };
