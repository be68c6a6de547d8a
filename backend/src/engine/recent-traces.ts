import { Buffer } from 'node:buffer';
import { createRecentIds, MAX_RECENT_IDS } from '@conduct/processor';

/**
 * The trace ids an engine stored lately, so that a part the pipeline marks `late: 'maybe'` (a new
 * trace the pipeline cannot tell from a later part of one it completed within
 * `stitching.lateTraceWindow`, and every new trace for a window after it starts on a store that
 * holds traces) is looked up in the store only when this engine may have stored its trace within
 * the window. A store lookup per trace cost 4% of the main thread's CPU in the bench (one SQLite
 * query each); a miss here costs a hash pass over the id and the probes of
 * processor/src/stitch/recent-ids.ts (generations of blocked Bloom filters).
 */
export interface RecentTraces {
  /** Notes a trace id (any case) as stored at `nowMs`. */
  add(traceId: string, nowMs: number): void;
  /** False when no trace of this id (any case) was added within the window before `nowMs`. */
  mayHold(traceId: string, nowMs: number): boolean;
  /**
   * Takes the ids of traces stored before this engine started (`ChainReader.recentTraceIds`): add
   * them to the seed, then `close()` it. They become one generation, the oldest, held as if all had
   * been stored at `asOfMs`. A seed never closed adds nothing.
   */
  seed(asOfMs: number): TraceSeed;
  /** Ids held in the live generations (for tests and sizing). */
  size(): number;
}

export interface TraceSeed {
  add(traceId: string): void;
  close(): void;
}

export { MAX_RECENT_IDS, MAX_SEEDED_IDS } from '@conduct/processor';

export function createRecentTraces(windowMs: number, maxIds = MAX_RECENT_IDS): RecentTraces {
  const ids = createRecentIds(windowMs, maxIds);
  return {
    add: (traceId, nowMs) => ids.add(hashId(traceId), nowMs),
    mayHold: (traceId, nowMs) => ids.mayHold(hashId(traceId), nowMs),
    seed(asOfMs) {
      const seed = ids.seed(asOfMs);
      return { add: (traceId) => seed.add(hashId(traceId)), close: () => seed.close() };
    },
    size: () => ids.size(),
  };
}

/**
 * FNV-1a over the id's characters, ASCII letters folded to lower case (`| 0x20` leaves hex
 * digits as they are and maps A-F to a-f; other ids only collide more). One pass: the filters mix
 * this one value into a block and the bits in it.
 */
function hashId(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ (id.charCodeAt(i) | 0x20), 16777619);
  return h;
}

/** Ids in one chunk of IdChunks at most: 1 MB, so that the pipeline thread takes them in steps. */
export const EARLIER_TRACES_PER_CHUNK = 65_536;
const ID_BYTES = 16;

/**
 * Trace ids packed as their 16 bytes, one after another, in chunks of at most
 * EARLIER_TRACES_PER_CHUNK (EngineOptions.recentTraces' `onEarlierTraces`). Each chunk has an array buffer
 * of its own, so that it can be moved to another thread. An id that is not 32 hex digits (any case)
 * is left out: no span's trace id reads as one.
 */
export class IdChunks {
  private readonly chunks: Uint8Array[] = [];
  private chunk = Buffer.alloc(EARLIER_TRACES_PER_CHUNK * ID_BYTES);
  private count = 0;

  add(traceId: string): void {
    if (traceId.length !== 2 * ID_BYTES) return;
    const at = this.count * ID_BYTES;
    // Node's hex writer stops at the first character that is no hex digit.
    if (this.chunk.write(traceId, at, ID_BYTES, 'hex') !== ID_BYTES) return;
    if (++this.count < EARLIER_TRACES_PER_CHUNK) return;
    this.chunks.push(this.chunk);
    this.chunk = Buffer.alloc(EARLIER_TRACES_PER_CHUNK * ID_BYTES);
    this.count = 0;
  }

  /** The chunks, the last one cut to its ids; this holds none afterwards. */
  take(): Uint8Array[] {
    const out = this.chunks.splice(0);
    if (this.count > 0) out.push(this.chunk.subarray(0, this.count * ID_BYTES));
    this.chunk = Buffer.alloc(0);
    this.count = 0;
    return out;
  }
}
