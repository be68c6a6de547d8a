import { describe, expect, it } from 'vitest';
import { TraceIdBytes, traceIdCount, traceIdTexts } from './trace-ids.js';

describe('TraceIdBytes', () => {
  const bytes = Buffer.from('0af7651916cd43dd8448eb211c80319c' + '00000000000000000000000000000001', 'hex');

  it('names each id by the lower-case hex of its 16 bytes, in order', () => {
    const ids = new TraceIdBytes(bytes);
    expect(ids.count).toBe(2);
    expect(ids.text(1)).toBe('00000000000000000000000000000001');
    expect(traceIdTexts(ids)).toEqual(['0af7651916cd43dd8448eb211c80319c', '00000000000000000000000000000001']);
    expect(traceIdCount(ids)).toBe(2);
  });

  it('reads ids from a view that does not start its buffer', () => {
    const view = Buffer.concat([Buffer.from([0xff, 0xee]), bytes]).subarray(2);
    expect(new TraceIdBytes(view).texts()).toEqual(new TraceIdBytes(bytes).texts());
  });

  it('refuses bytes that are not whole ids', () => {
    expect(() => new TraceIdBytes(bytes.subarray(0, 20))).toThrow(/not a multiple of 16/);
  });

  it('passes texts through', () => {
    expect(traceIdTexts(['a', 'b'])).toEqual(['a', 'b']);
    expect(traceIdCount(['a', 'b'])).toBe(2);
  });
});
