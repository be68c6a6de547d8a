const TRACE_ID_HEX = /^[0-9a-fA-F]{32}$/;

/** A 32-digit hex trace id (either case) as its 16 bytes; undefined when malformed or all zero. */
export function traceIdToBytes(hex: string): Buffer | undefined {
  if (typeof hex !== 'string' || !TRACE_ID_HEX.test(hex)) return undefined;
  const bytes = Buffer.from(hex, 'hex');
  return bytes.every((b) => b === 0) ? undefined : bytes;
}

/** 16 bytes back to lower-case hex. */
export function traceIdFromBytes(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}
