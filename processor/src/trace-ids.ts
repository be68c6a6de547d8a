/** Bytes of a trace id. */
const TRACE_ID_BYTES = 16;

/**
 * A request's distinct trace ids as the pipeline thread decodes them: 16 bytes per id, one after
 * another, in the order the request's spans first name them (its columns' trace table). An id's
 * text is the lower-case hex of its bytes, made only when asked for: the journal writes the bytes
 * as they are, where a text per id of every request was 1.8% of the pipeline thread with small
 * traces (bench/README.md, "Trace ids as bytes in the journal").
 */
export class TraceIdBytes {
  /** `bytes` is 16 bytes per id; the list keeps it, so nothing may write it afterwards (a columns' trace table is never written once built). */
  constructor(readonly bytes: Uint8Array) {
    if (bytes.length % TRACE_ID_BYTES !== 0) throw new RangeError(`trace id bytes of length ${bytes.length}, not a multiple of ${TRACE_ID_BYTES}`);
  }

  get count(): number {
    return this.bytes.length / TRACE_ID_BYTES;
  }

  /** The text of id `i`. */
  text(i: number): string {
    return Buffer.from(this.bytes.buffer, this.bytes.byteOffset + i * TRACE_ID_BYTES, TRACE_ID_BYTES).toString('hex');
  }

  /** Every id's text, in order. */
  texts(): string[] {
    const out = new Array<string>(this.count);
    for (let i = 0; i < out.length; i++) out[i] = this.text(i);
    return out;
  }
}

/** How `TraceIngest.acceptRaw` names an accepted request's traces: their texts, or their bytes. */
export type AcceptedTraceIds = readonly string[] | TraceIdBytes;

/** The texts of accepted trace ids. */
export function traceIdTexts(ids: AcceptedTraceIds): readonly string[] {
  return ids instanceof TraceIdBytes ? ids.texts() : ids;
}

/** How many accepted trace ids. */
export function traceIdCount(ids: AcceptedTraceIds): number {
  return ids instanceof TraceIdBytes ? ids.count : ids.length;
}
