import type { Chain, ChainBatch, ChainConsumer } from '../model.js';

/** A chain consumer that keeps every batch it is given: a test double shipped as real code. */
export interface CollectingConsumer extends ChainConsumer {
  readonly batches: ChainBatch[];
  /** Every chain of every batch, in the order consumed. */
  chains(): Chain[];
}

export function createCollectingConsumer(): CollectingConsumer {
  const batches: ChainBatch[] = [];
  return {
    batches,
    async consume(batch) {
      batches.push(batch);
    },
    chains: () => batches.flatMap((b) => b.chains),
  };
}

/**
 * A consumer that holds each batch until released: for tests of back-pressure. `release()` lets
 * the oldest held batch through; `releaseAll()` lets every held and future batch through.
 */
export interface GatedConsumer extends CollectingConsumer {
  readonly held: number;
  release(): void;
  releaseAll(): void;
}

export function createGatedConsumer(): GatedConsumer {
  const inner = createCollectingConsumer();
  const gates: Array<() => void> = [];
  let open = false;
  return {
    batches: inner.batches,
    chains: inner.chains,
    get held() {
      return gates.length;
    },
    async consume(batch) {
      if (!open) await new Promise<void>((resolve) => gates.push(resolve));
      await inner.consume(batch);
    },
    release() {
      gates.shift()?.();
    },
    releaseAll() {
      open = true;
      while (gates.length > 0) gates.shift()!();
    },
  };
}

/** A consumer whose every call fails: for tests of error handling. */
export function createFailingConsumer(message = 'consumer failed'): ChainConsumer & { calls: number } {
  const consumer = {
    calls: 0,
    async consume(): Promise<void> {
      consumer.calls++;
      throw new Error(message);
    },
  };
  return consumer;
}
