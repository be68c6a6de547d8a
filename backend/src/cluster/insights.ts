import type { Detection } from '../detect/index.js';
import type { ClusterStore, DetectionCheckpoint, DetectionState } from '../store/index.js';
import type { DetectionFactory } from './owner.js';
import { partitionOf } from './partition.js';

/** How long the partitions' offsets read for cache checks are reused (ms). */
const OFFSETS_TTL_MS = 100;

/** What the API asks of an identity's learning, answered by whichever instance serves the request. */
export interface ClusterInsights {
  /** The detection that holds an identity's baseline as committed (loaded per partition, cached until its offset moves). */
  detectionOf(identity: string): Promise<Detection | undefined>;
  /** Uses the owner's own detection for partitions this instance owns (always current there). */
  useOwner(owns: (partition: number) => boolean, owner: { detection(): Detection | undefined }): void;
  /** Forgets cached partitions (after a flush or a verdict). */
  invalidate(): void;
}

/**
 * Identity learning state for the API of any instance: for partitions this instance owns, the
 * owner's detection; for the others, the partition's baselines loaded from the owners' last
 * checkpoints (read-only), kept while the partition's committed offset does not move.
 */
export function createClusterInsights(options: {
  store: ClusterStore;
  state: DetectionState;
  partitions: number;
  createDetection: DetectionFactory;
}): ClusterInsights {
  const { store, partitions } = options;
  const readOnly: DetectionState = {
    ...options.state,
    checkpoint: (_cp: DetectionCheckpoint) => Promise.reject(new Error('read-only view of the cluster\'s baselines')),
  };
  const cache = new Map<number, { committed: number; epoch: number; detection: Promise<Detection> }>();
  let offsets: { at: number; read: Promise<Map<number, { committed: number; epoch: number }>> } | undefined;
  let owns: (partition: number) => boolean = () => false;
  let owner: { detection(): Detection | undefined } | undefined;

  const currentOffsets = () => {
    if (!offsets || performance.now() - offsets.at > OFFSETS_TTL_MS) {
      const read = store.partitions().then((rows) => new Map(rows.map((r) => [r.partition, { committed: r.committed, epoch: r.epoch }])));
      offsets = { at: performance.now(), read };
      read.catch(() => (offsets = undefined));
    }
    return offsets.read;
  };

  return {
    async detectionOf(identity) {
      const p = partitionOf(identity, partitions);
      if (owns(p)) {
        const own = owner?.detection();
        if (own) return own;
      }
      const now = (await currentOffsets()).get(p) ?? { committed: 0, epoch: 0 };
      const hit = cache.get(p);
      if (hit && hit.committed === now.committed && hit.epoch === now.epoch) return hit.detection;
      const detection = options.createDetection(readOnly, [p]);
      cache.set(p, { ...now, detection });
      detection.catch(() => cache.delete(p));
      return detection;
    },
    useOwner(o, stage) {
      owns = o;
      owner = stage;
    },
    invalidate() {
      offsets = undefined;
      cache.clear();
    },
  };
}
