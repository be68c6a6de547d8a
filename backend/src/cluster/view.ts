import type { ClusterInstanceRecord, PartitionRecord } from '../store/index.js';

/** `GET /api/v1/cluster` (README.md, "HTTP API"; docs/scaling.md). */
export interface ClusterView {
  instances: Array<{
    id: string;
    endpoint: string;
    /** The partitions it owns, ascending. */
    partitions: number[];
    /** ISO time of its last heartbeat. */
    lastHeartbeat: string;
  }>;
  /** `cluster.partitions`. */
  partitions: number;
}

/** The view of a cluster: live instances, each with the partitions whose lease it holds. */
export function clusterView(instances: readonly ClusterInstanceRecord[], partitions: readonly PartitionRecord[]): ClusterView {
  const owned = new Map<string, number[]>(instances.map((i) => [i.id, []]));
  for (const p of partitions) if (p.owner !== undefined) owned.get(p.owner)?.push(p.partition);
  return {
    instances: instances.map((i) => ({
      id: i.id,
      endpoint: i.endpoint,
      partitions: owned.get(i.id)!,
      lastHeartbeat: new Date(i.lastHeartbeatMs).toISOString(),
    })),
    partitions: partitions.length,
  };
}

/** The view of one instance on its own storage (SQLite): it owns every partition. */
export function singleInstanceView(id: string, endpoint: string, partitions: number, nowMs: number): ClusterView {
  return {
    instances: [{ id, endpoint, partitions: Array.from({ length: partitions }, (_, i) => i), lastHeartbeat: new Date(nowMs).toISOString() }],
    partitions,
  };
}
