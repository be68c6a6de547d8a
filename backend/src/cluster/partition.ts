/**
 * Which partition an identity belongs to, and which instance owns each partition. Pure.
 *
 * Identities hash into partitions with 32-bit FNV-1a over the id's UTF-8 bytes: stable across
 * processes, versions and platforms (the partition of a baseline is stored with it).
 *
 * Partitions go to live instances by rendezvous hashing with a bounded load: each partition
 * ranks the instances by a hash of (instance, partition) and goes to the best-ranked instance
 * below its fair share (first the floor of partitions / instances, then one more for the rest).
 * Given the current owners, an instance first keeps its best-ranked partitions up to the floor,
 * and a partition goes back to its owner while that one is below the cap: when an instance
 * joins, the others only give partitions up, and when one leaves, the others only take. Every
 * instance computes the same answer from the same live instances and owners.
 */

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
const encoder = new TextEncoder();

/** 32-bit FNV-1a of the string's UTF-8 bytes. */
export function fnv1a(text: string): number {
  let h = FNV_OFFSET;
  for (const byte of encoder.encode(text)) {
    h ^= byte;
    h = Math.imul(h, FNV_PRIME);
  }
  return h >>> 0;
}

/** MurmurHash3's finaliser: spreads close inputs (instance ids differing in one digit) apart. */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The partition of an identity, 0..partitions-1. */
export function partitionOf(identity: string, partitions: number): number {
  return fnv1a(identity) % partitions;
}

/** Rank score of an instance for a partition (higher wins). */
function score(instance: string, partition: number): number {
  return mix(fnv1a(instance) ^ Math.imul(partition + 1, 0x9e3779b1));
}

/**
 * The owner of every partition among `instances` (ids), as a map from instance to its partitions
 * in ascending order. Every instance appears, possibly with none; empty when no instance is given.
 */
export function assignPartitions(instances: readonly string[], partitions: number, owners?: ReadonlyMap<number, string>): Map<string, number[]> {
  const ids = [...new Set(instances)].sort();
  const out = new Map<string, number[]>(ids.map((id) => [id, []]));
  if (ids.length === 0) return out;
  const floor = Math.floor(partitions / ids.length);
  const ownerOf = (p: number) => {
    const id = owners?.get(p);
    return id !== undefined && out.has(id) ? id : undefined;
  };
  // Owners keep their best-ranked partitions up to the floor of the fair share.
  const held = new Map<string, number[]>();
  for (let p = 0; p < partitions; p++) {
    const id = ownerOf(p);
    if (id !== undefined) held.set(id, [...(held.get(id) ?? []), p]);
  }
  const placed = new Set<number>();
  for (const [id, list] of held) {
    for (const p of list.sort((a, b) => score(id, b) - score(id, a)).slice(0, floor)) {
      out.get(id)!.push(p);
      placed.add(p);
    }
  }
  // Two passes keep the spread within one partition: first every instance takes up to the floor,
  // then the partitions left go below the ceiling; the owner first, else the best-ranked instance.
  const rank = (p: number) => ids.map((id) => ({ id, s: score(id, p) })).sort((a, b) => b.s - a.s || (a.id < b.id ? -1 : 1));
  const place = (p: number, cap: number): boolean => {
    const owner = ownerOf(p);
    const chosen = owner !== undefined && out.get(owner)!.length < cap ? owner : rank(p).find((r) => out.get(r.id)!.length < cap)?.id;
    if (chosen === undefined) return false;
    out.get(chosen)!.push(p);
    return true;
  };
  const left: number[] = [];
  for (let p = 0; p < partitions; p++) if (!placed.has(p) && !place(p, floor)) left.push(p);
  for (const p of left) place(p, floor + 1);
  for (const list of out.values()) list.sort((a, b) => a - b);
  return out;
}
