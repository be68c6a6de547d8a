import { mixWord } from '@conduct/proto';
import { describe, expect, it } from 'vitest';
import { idHash } from './id-bytes.js';

/** 4,096 ids that differ only in the top three bits of each of their four 32-bit words. */
function topBitIds(): Uint8Array {
  const bytes = new Uint8Array(4096 * 16).fill(0x11);
  for (let n = 0; n < 4096; n++) {
    for (let w = 0; w < 4; w++) bytes[n * 16 + w * 4 + 3] = 0x11 | (((n >> (3 * w)) & 7) << 5);
  }
  return bytes;
}

describe('trace id hash', () => {
  it('spreads ids that differ only in their words\' top bits over a small table (a sender cannot pile them into one bucket)', () => {
    const bytes = topBitIds();
    const buckets = new Set<number>();
    const hashes = new Set<number>();
    for (let n = 0; n < 4096; n++) {
      const h = idHash(bytes, n * 16);
      buckets.add(h & 1023);
      hashes.add(h);
    }
    // A uniform hash fills ~1,005 of 1,024 buckets with 4,096 ids; a multiply-only mix put them in 1.
    expect(buckets.size).toBeGreaterThan(900);
    expect(hashes.size).toBeGreaterThan(4000);
  });

  it('mixWord carries a word\'s top bits into its low bits', () => {
    const low = new Set<number>();
    for (let t = 0; t < 128; t++) low.add(mixWord((t << 25) | 0x123456) & 127);
    expect(low.size).toBeGreaterThan(70);
  });
});
