/** Hand-written protobuf wire bytes for tests that need inputs the generated encoder never makes. */
import { Buffer } from 'node:buffer';

export function varint(n: number | bigint): Buffer {
  let v = BigInt.asUintN(64, BigInt(n));
  const out: number[] = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    out.push(b);
  } while (v > 0n);
  return Buffer.from(out);
}

export const tag = (field: number, wireType: number) => varint(field * 8 + wireType);

/** A length-delimited field. */
export function ld(field: number, ...parts: (Buffer | string)[]): Buffer {
  const body = Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p)));
  return Buffer.concat([tag(field, 2), varint(body.length), body]);
}

export const vi = (field: number, n: number | bigint) => Buffer.concat([tag(field, 0), varint(n)]);

export function fixed64(field: number, n: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(n);
  return Buffer.concat([tag(field, 1), b]);
}

export const TRACE = Buffer.from('0af7651916cd43dd8448eb211c80319c', 'hex');
export const SPAN = Buffer.from('b7ad6b7169203331', 'hex');

/** One request with one resource, one scope and the given span bodies. */
export function request(...spans: Buffer[]): Buffer {
  return ld(1, ld(1, ld(1, kv('service.name', ld(1, 'svc')))), ld(2, ...spans.map((s) => ld(2, s))));
}

/** A KeyValue body with the given AnyValue body. */
export function kv(key: string, anyValue: Buffer): Buffer {
  return Buffer.concat([ld(1, key), ld(2, anyValue)]);
}

/** A minimal valid span body, followed by `extra`. */
export function span(...extra: Buffer[]): Buffer {
  return Buffer.concat([ld(1, TRACE), ld(2, SPAN), ld(5, 'op'), ...extra]);
}
