import { Buffer } from 'node:buffer';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import type { Chain } from '@conduct/processor';

/** First byte of a held chain stored deflated: its JSON, raw deflate at level 1, follows. */
const DEFLATED_JSON = 1;
/** First byte of JSON text stored as bytes (a PostgreSQL row written as text before migration 060). */
const JSON_OPEN = 0x7b;

/**
 * How both stores keep the chains alerts hold out of learning (`held_chains.chain`): the chain's
 * JSON, deflated. An incident holds a copy of every chain it counts, so held chains were most of a
 * long-running store's bytes: 35-42 of 68 MB in the soak phase, about 4.6 KB a chain as JSON. Each
 * call of a chain repeats its field names and most of its values, so JSON deflates well: 10.7x for
 * chains of 20 calls, 2.7x for the bench workload's chains of 2 (bench/README.md, "Held chains
 * deflated"). The calls' binary form (call-codec.ts) would take numbers of the store's texts,
 * which the text sweep would then have to find in held chains too; inline it was 3.8x larger than
 * deflated JSON for 20 calls. Level 1, the fastest: it costs CPU where JSON cost little, about
 * 20-25 µs more a chain than JSON.stringify alone (most of it zlib setting up a stream per call;
 * a smaller window did not change that), paid once, when an alert holds the chain.
 */
export function encodeHeldChain(chain: Chain): Buffer {
  const deflated = deflateRawSync(JSON.stringify(chain), { level: 1 });
  const stored = Buffer.allocUnsafe(deflated.length + 1);
  stored[0] = DEFLATED_JSON;
  deflated.copy(stored, 1);
  return stored;
}

/** A held chain from its stored form: deflated, or JSON (as text or bytes) as rows were written before. */
export function decodeHeldChain(stored: string | Uint8Array): Chain {
  if (typeof stored === 'string') return JSON.parse(stored) as Chain;
  const bytes = Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength);
  if (bytes[0] === DEFLATED_JSON) return JSON.parse(inflateRawSync(bytes.subarray(1)).toString('utf8')) as Chain;
  if (bytes[0] === JSON_OPEN) return JSON.parse(bytes.toString('utf8')) as Chain;
  throw new Error(`a held chain of an unknown form (first byte ${bytes[0]})`);
}
