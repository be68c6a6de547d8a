/** Value of each hex digit (either case) by char code, -1 for every other code unit. */
const HEX = new Int8Array(65536).fill(-1);
for (let i = 0; i < 16; i++) {
  HEX['0123456789abcdef'.charCodeAt(i)] = i;
  HEX['0123456789ABCDEF'.charCodeAt(i)] = i;
}

/** A 32-digit hex trace id (either case) as its 16 bytes; undefined when malformed or all zero. */
export function traceIdToBytes(hex: string): Buffer | undefined {
  if (typeof hex !== 'string' || hex.length !== 32) return undefined;
  // One pass over the digits: no regular expression, hex decoder and zero check of their own.
  const bytes = Buffer.allocUnsafe(16);
  let any = 0;
  for (let i = 0; i < 16; i++) {
    const hi = HEX[hex.charCodeAt(2 * i)]!;
    const lo = HEX[hex.charCodeAt(2 * i + 1)]!;
    if ((hi | lo) < 0) return undefined;
    any |= bytes[i] = (hi << 4) | lo;
  }
  return any === 0 ? undefined : bytes;
}

/** 16 bytes back to lower-case hex. */
export function traceIdFromBytes(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}
