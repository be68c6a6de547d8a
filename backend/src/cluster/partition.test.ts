import { describe, expect, it } from 'vitest';
import { assignPartitions, fnv1a, partitionOf } from './partition.js';

describe('partitions', () => {
  it('hashes an identity to the same partition every time, with the published FNV-1a values', () => {
    // FNV-1a 32-bit test vectors.
    expect(fnv1a('')).toBe(0x811c9dc5);
    expect(fnv1a('a')).toBe(0xe40c292c);
    expect(fnv1a('foobar')).toBe(0xbf9cf968);
    expect(partitionOf('spiffe://prod/ns/ci/sa/deployer', 64)).toBe(fnv1a('spiffe://prod/ns/ci/sa/deployer') % 64);
    const seen = new Set<number>();
    for (let i = 0; i < 2000; i++) seen.add(partitionOf(`svc:shop/service-${i}`, 64));
    expect(seen.size).toBe(64);
  });

  it('gives every partition to exactly one instance, evenly', () => {
    for (const n of [1, 2, 3, 5, 7]) {
      const ids = Array.from({ length: n }, (_, i) => `host-a:${4000 + i}`);
      const a = assignPartitions(ids, 64);
      const all = [...a.values()].flat().sort((x, y) => x - y);
      expect(all).toEqual(Array.from({ length: 64 }, (_, i) => i));
      for (const parts of a.values()) expect(parts.length).toBeLessThanOrEqual(Math.ceil(64 / n));
      for (const parts of a.values()) expect(parts.length).toBeGreaterThanOrEqual(Math.floor(64 / n));
    }
  });

  it('is the same answer whatever the order of the instance list', () => {
    const a = assignPartitions(['c', 'a', 'b'], 64);
    const b = assignPartitions(['b', 'c', 'a'], 64);
    expect([...a.entries()]).toEqual([...b.entries()]);
  });

  it('moves few partitions when an instance joins or leaves', () => {
    const before = assignPartitions(['i-1', 'i-2', 'i-3'], 64);
    const after = assignPartitions(['i-1', 'i-2', 'i-3', 'i-4'], 64);
    const ownerIn = (m: Map<string, number[]>) => {
      const o = new Map<number, string>();
      for (const [id, ps] of m) for (const p of ps) o.set(p, id);
      return o;
    };
    const b = ownerIn(before);
    const a = ownerIn(after);
    const moved = [...b.keys()].filter((p) => a.get(p) !== b.get(p));
    // The newcomer's fair share is 16; a plain modulo would move about 48.
    expect(after.get('i-4')!.length).toBe(16);
    expect(moved.length).toBeLessThanOrEqual(24);
    const left = assignPartitions(['i-1', 'i-3'], 64);
    const l = ownerIn(left);
    // Partitions of the instances that stay mostly stay with them.
    const kept = [...b.entries()].filter(([p, id]) => id !== 'i-2' && l.get(p) === id).length;
    const ofStaying = [...b.values()].filter((id) => id !== 'i-2').length;
    expect(kept).toBeGreaterThanOrEqual(ofStaying - 8);
  });

  it('given the owners, a join only takes from the others and a leave only gives to them', () => {
    const owners = (m: Map<string, number[]>) => {
      const o = new Map<number, string>();
      for (const [id, ps] of m) for (const p of ps) o.set(p, id);
      return o;
    };
    for (const seed of ['x', 'y', 'z', 'w']) {
      const three = [`${seed}-1`, `${seed}-2`, `${seed}-3`];
      const before = assignPartitions(three, 64);
      const joined = assignPartitions([...three, `${seed}-4`], 64, owners(before));
      expect(joined.get(`${seed}-4`)!.length).toBe(16);
      for (const id of three) for (const p of joined.get(id)!) expect(before.get(id)).toContain(p);
      const left = assignPartitions([three[0]!, three[2]!], 64, owners(joined));
      for (const id of [three[0]!, three[2]!]) {
        expect(left.get(id)!.length).toBe(32);
        for (const p of joined.get(id)!) expect(left.get(id)).toContain(p);
      }
    }
  });
});
