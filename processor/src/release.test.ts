import { getHeapStatistics } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { ownsWholeBuffer, releaseBuffer } from './release.js';

const external = () => getHeapStatistics().external_memory;
const MB = 1024 * 1024;

describe('releaseBuffer', () => {
  it("detaches the buffer and takes its bytes off V8's external memory at once", () => {
    const view = Buffer.allocUnsafeSlow(8 * MB).fill(1);
    const before = external();
    releaseBuffer(view.buffer);
    // Detached: every view of it reads as empty.
    expect(view.buffer.byteLength).toBe(0);
    expect(view.byteLength).toBe(0);
    // Counted no more, before any collection (a copy made again in this isolate, as
    // structuredClone's transfer does, would leave the count as it was).
    expect(before - external()).toBeGreaterThanOrEqual(8 * MB);
  });

  it('frees the memory once the message carrying it is dropped, though views of it are still held', async () => {
    const before = process.memoryUsage().arrayBuffers;
    // Held here, so no collection can be what frees them.
    const views = Array.from({ length: 64 }, () => Buffer.allocUnsafeSlow(MB));
    for (const view of views) releaseBuffer(view.buffer);
    const deadline = Date.now() + 5_000;
    while (process.memoryUsage().arrayBuffers - before >= 16 * MB && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 * MB);
    expect(views.every((view) => view.byteLength === 0)).toBe(true);
  });

  it('leaves a SharedArrayBuffer and a detached buffer as they are', () => {
    const shared = new SharedArrayBuffer(16);
    releaseBuffer(shared);
    expect(shared.byteLength).toBe(16);
    const view = new Uint8Array(16);
    releaseBuffer(view.buffer);
    releaseBuffer(view.buffer);
    expect(view.buffer.byteLength).toBe(0);
  });

  it('tells a view that spans its whole buffer from one into a larger buffer', () => {
    expect(ownsWholeBuffer(new Uint8Array(8))).toBe(true);
    const big = new Uint8Array(16);
    expect(ownsWholeBuffer(big.subarray(0, 8))).toBe(false);
    expect(ownsWholeBuffer(big.subarray(8))).toBe(false);
    // Small Buffers come from node's shared pool: never whole.
    expect(ownsWholeBuffer(Buffer.from('pooled'))).toBe(false);
  });
});
