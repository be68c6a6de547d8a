import { describe, expect, it } from 'vitest';
import type { Chain } from '@conduct/processor';
import { call, traceId } from './testdata/fixtures.js';
import { decodeHeldChain, encodeHeldChain } from './held-chain.js';

const T = 1_700_000_000_000;

/** A chain of `n` calls such as an enumeration makes: one peer, operations that differ a little. */
function chainOf(n: number): Chain {
  const t = traceId(7);
  const calls = Array.from({ length: n }, (_, i) =>
    call({ traceId: t, identity: 'ci:deployer', spanId: (0x100 + i).toString(16).padStart(16, '0'), service: 'deploy-bot', peer: 's3.amazonaws.com', operation: `GET /bucket-${i}`, startMs: T + i }),
  );
  return { traceId: t, identity: 'ci:deployer', identityKind: 'cicd', startMs: T, endMs: T + n + 1, calls };
}

describe('held chains as stored', () => {
  it('reads back what it stores, odd texts included', () => {
    const odd = chainOf(3);
    odd.calls[0]!.operation = `GET /${'é'.repeat(300)}\u0000"'\n\u2028`;
    odd.calls[1]!.source = { userAgent: 'x'.repeat(5000), publicAddress: true };
    expect(decodeHeldChain(encodeHeldChain(odd))).toEqual(JSON.parse(JSON.stringify(odd)));
  });

  it('stores a chain of many calls in a fraction of its JSON', () => {
    const chain = chainOf(20);
    const json = Buffer.byteLength(JSON.stringify(chain));
    const stored = encodeHeldChain(chain);
    expect(stored.length).toBeLessThan(json / 4);
    expect(decodeHeldChain(stored)).toEqual(JSON.parse(JSON.stringify(chain)));
  });

  it('reads rows written before as JSON, as text or as its bytes, and refuses a form it does not know', () => {
    const chain = JSON.parse(JSON.stringify(chainOf(2))) as Chain;
    expect(decodeHeldChain(JSON.stringify(chain))).toEqual(chain);
    expect(decodeHeldChain(Buffer.from(JSON.stringify(chain)))).toEqual(chain);
    expect(() => decodeHeldChain(Buffer.from([9, 1, 2]))).toThrow(/unknown form/);
  });
});
