import { describe, expect, it } from 'vitest';
import { createStitcher, type CompletedTrace, type StitchConfig } from './index.js';
import type { TraceSpan } from '../identity/index.js';
import { columns, request, resource, span } from '../calls/testdata/trace-builder.js';

const svc = resource('api');
const traceId = (n: number) => n.toString(16).padStart(32, '0');
/** A request holding `count` spans of trace n, ending at endMs; span ids from `first` on. */
const spans = (n: number, count: number, endMs = 1_000, first = 0) =>
  columns(request(Array.from({ length: count }, (_, i) => span(svc, { id: `s${n}-${first + i}`, traceId: traceId(n), start: endMs - 5, end: endMs }))));

function setup(config: Partial<StitchConfig> = {}) {
  const clock = { t: 0, now() { return this.t; } };
  const stitcher = createStitcher({ idleMs: 1_000, latenessMs: 10_000, maxPendingSpans: 100, ...config }, clock);
  return { clock, stitcher };
}

describe('stitcher', () => {
  it('completes a trace when no span arrived for idleMs of processing time', () => {
    const { clock, stitcher } = setup();
    expect(stitcher.add(spans(1, 2))).toEqual([]);
    clock.t = 600;
    stitcher.add(spans(1, 1, 1_000, 2));
    clock.t = 1_500;
    expect(stitcher.tick()).toEqual([]); // the last span arrived 900 ms ago
    clock.t = 1_600;
    const done = stitcher.tick();
    expect(done.map((t) => [t.traceId, t.spans.length, t.reason])).toEqual([[traceId(1), 3, 'idle']]);
    expect(stitcher.stats()).toMatchObject({ pendingTraces: 0, pendingSpans: 0, completed: { idle: 1 } });
  });

  it('keeps a span sent again (same span id in its trace) once, and counts the copy', () => {
    const { stitcher } = setup();
    stitcher.add(spans(1, 2));
    // The sender resends the request whose answer it never got; one more span comes with it.
    stitcher.add(spans(1, 3));
    const [done] = stitcher.flush();
    expect(done!.spans).toHaveLength(3);
    expect(new Set(done!.spans.map((s) => s.span.spanId)).size).toBe(3);
    expect(stitcher.stats()).toMatchObject({ pendingSpans: 0, duplicateSpans: 2 });
  });

  it('completes a trace when the event-time watermark passes its newest span end', () => {
    const { stitcher } = setup({ idleMs: 60_000 });
    stitcher.add(spans(1, 1, 1_000));
    stitcher.add(spans(2, 1, 5_000));
    expect(stitcher.add(spans(3, 1, 11_000))).toEqual([]); // watermark 1_000: not past trace 1 yet
    const done = stitcher.add(spans(4, 1, 11_500)); // watermark 1_500
    expect(done.map((t) => [t.traceId, t.reason])).toEqual([[traceId(1), 'watermark']]);
    expect(stitcher.stats()).toMatchObject({ pendingTraces: 3, watermarkMs: 1_500, completed: { watermark: 1 } });
  });

  it('a span extending a trace keeps it from completing by the old end', () => {
    const { stitcher } = setup({ idleMs: 60_000 });
    stitcher.add(spans(1, 1, 1_000));
    stitcher.add(spans(1, 1, 9_000));
    expect(stitcher.add(spans(2, 1, 12_000))).toEqual([]);
    expect(stitcher.add(spans(3, 1, 19_001)).map((t) => t.traceId)).toEqual([traceId(1)]);
  });

  it('a trace completed by idleness is not completed again when the watermark passes it', () => {
    const { clock, stitcher } = setup({ idleMs: 1_000 });
    stitcher.add(spans(1, 2, 1_000));
    clock.t = 1_000;
    expect(stitcher.tick().map((t) => [t.traceId, t.reason])).toEqual([[traceId(1), 'idle']]);
    expect(stitcher.add(spans(2, 1, 20_000))).toEqual([]); // watermark 10_000, past trace 1's end
    expect(stitcher.stats()).toMatchObject({ pendingTraces: 1, pendingSpans: 1, completed: { idle: 1, watermark: 0 } });
  });

  it('a span stamped far in the future moves the watermark only to processing time plus the skew', () => {
    const { clock, stitcher } = setup({ idleMs: 60_000, maxFutureSkewMs: 5_000 });
    clock.t = 1_000;
    stitcher.add(spans(1, 1, 1_000));
    expect(stitcher.add(spans(2, 1, 32_503_680_000_000))).toEqual([]); // year 3000
    expect(stitcher.stats().watermarkMs).toBe(1_000 + 5_000 - 10_000);
    clock.t = 7_000;
    expect(stitcher.add(spans(3, 1, 1_000_000)).map((t) => t.traceId)).toEqual([traceId(1)]);
  });

  it('completes everything on flush', () => {
    const { stitcher } = setup();
    stitcher.add(spans(1, 2));
    stitcher.add(spans(2, 3));
    const done = stitcher.flush();
    expect(done.map((t) => [t.traceId, t.spans.length, t.reason])).toEqual([
      [traceId(1), 2, 'flush'],
      [traceId(2), 3, 'flush'],
    ]);
    expect(stitcher.stats()).toMatchObject({ pendingTraces: 0, pendingSpans: 0, completed: { flush: 2 } });
  });

  it('when full, completes the least recently active traces early and counts them', () => {
    const { stitcher } = setup({ maxPendingSpans: 10, idleMs: 60_000 });
    stitcher.add(spans(1, 4));
    stitcher.add(spans(2, 4));
    stitcher.add(spans(1, 1)); // trace 1 is now the most recently active
    const done = stitcher.add(spans(3, 4));
    expect(done.map((t) => [t.traceId, t.reason])).toEqual([[traceId(2), 'evicted']]);
    expect(stitcher.stats()).toMatchObject({ pendingSpans: 9, pendingTraces: 2, completed: { evicted: 1 } });
  });

  it('when full, frees a tenth of the limit at once, so that early completions come in batches', () => {
    const { stitcher } = setup({ maxPendingSpans: 100, idleMs: 60_000 });
    for (let t = 1; t <= 10; t++) expect(stitcher.add(spans(t, 10))).toEqual([]);
    // 101 spans: over the limit, and traces complete until at most 90 are held.
    const done = stitcher.add(spans(11, 1));
    expect(done.map((t) => [t.traceId, t.reason])).toEqual([
      [traceId(1), 'evicted'],
      [traceId(2), 'evicted'],
    ]);
    expect(stitcher.stats()).toMatchObject({ pendingSpans: 81, completed: { evicted: 2 } });
    // Back under the limit: nothing completes until it is exceeded again.
    expect(stitcher.add(spans(12, 19))).toEqual([]);
    expect(stitcher.stats()).toMatchObject({ pendingSpans: 100 });
  });

  it('keeps completing by last activity through thousands of arrivals at the same traces', () => {
    const { clock, stitcher } = setup({ maxPendingSpans: 1_000_000, idleMs: 1_000 });
    // 50 traces, each touched again every 10 ms for 20 s of processing time (100k arrivals):
    // trace n stops at 10 s + n * 100 ms.
    const lastTouch = new Map<number, number>();
    const done: Array<[string, number]> = [];
    for (let t = 0; t <= 20_000; t += 10) {
      clock.t = t;
      for (let n = 0; n < 50; n++) {
        if (t <= 10_000 + n * 100) {
          stitcher.add(spans(n + 1, 1));
          lastTouch.set(n + 1, t);
        }
      }
      for (const trace of stitcher.tick()) done.push([trace.traceId, clock.t]);
    }
    // Each completed at the first tick at least idleMs after its last span, in that order.
    expect(done).toEqual([...lastTouch].map(([n, last]) => [traceId(n), last + 1_000]));
    expect(stitcher.stats()).toMatchObject({ pendingTraces: 0, completed: { idle: 50 } });
  });

  it('remembers the most recently completed trace ids, forgetting the oldest, through many completions', () => {
    const { stitcher } = setup({ rememberedTraces: 3, maxPendingSpans: 1_000_000 });
    const lateAfter = (n: number) => {
      const before = stitcher.stats().lateSpans;
      stitcher.add(spans(n, 1));
      stitcher.flush();
      return stitcher.stats().lateSpans - before;
    };
    // Thousands of completions, trace 1 completed again now and then: it stays remembered.
    for (let n = 2; n < 5_000; n++) {
      stitcher.add(spans(n, 1));
      if (n % 2 === 0) stitcher.add(spans(1, 1));
      stitcher.flush();
    }
    // Remembered now: 1 (completed with 4,998), 4,998 and 4,999.
    expect(lateAfter(4_997)).toBe(0); // forgotten: not late (and now the newest)
    expect(lateAfter(4_999)).toBe(1);
    expect(lateAfter(1)).toBe(1);
    expect(lateAfter(4_998)).toBe(0); // pushed out when 4,997 completed
  });

  it('spans arriving after their trace completed start a new entry and are counted as late', () => {
    const { stitcher } = setup();
    stitcher.add(spans(1, 2));
    stitcher.flush();
    expect(stitcher.add(spans(1, 2))).toEqual([]);
    expect(stitcher.stats()).toMatchObject({ pendingTraces: 1, pendingSpans: 2, lateSpans: 2 });
    expect(stitcher.flush()[0]!.spans).toHaveLength(2);
  });

  it('checks idleness at idleMs/20, bounded to [10ms, 250ms]', () => {
    expect(setup({ idleMs: 2_000 }).stitcher.checkIntervalMs).toBe(100);
    expect(setup({ idleMs: 8 }).stitcher.checkIntervalMs).toBe(10);
    expect(setup({ idleMs: 60_000 }).stitcher.checkIntervalMs).toBe(250);
  });

  it('marks later parts: joins within lateTraceWindowMs of the last completion, fragment after, maybe while the window reaches back before the start on a store with traces', () => {
    const { clock, stitcher } = setup({ lateTraceWindowMs: 5_000, earlierPartsStored: true });
    const late = (n: number) => {
      stitcher.add(spans(n, 1));
      return stitcher.flush().map((t) => t.late);
    };
    // Within a window of the start, an unknown trace may have been stored by an earlier run.
    expect(late(1)).toEqual(['maybe']);
    clock.t = 5_001;
    expect(late(2)).toEqual([undefined]);
    // Trace 2 completed at 5_001: a part within 5 s joins (and completes it again), a part more
    // than 5 s after its latest completion is a fragment.
    clock.t = 10_001;
    expect(late(2)).toEqual(['joins']);
    clock.t = 15_002;
    expect(late(2)).toEqual(['fragment']);
    expect(stitcher.stats().lateSpans).toBe(2);
  });

  it('once handed the ids stored before the start, marks maybe only a trace among them, for a window after the start', () => {
    const { clock, stitcher } = setup({ lateTraceWindowMs: 5_000, earlierPartsStored: true });
    const late = (n: number) => {
      stitcher.add(spans(n, 1));
      return stitcher.flush().map((t) => t.late);
    };
    const idBytes = (...ns: number[]) => Buffer.concat(ns.map((n) => Buffer.from(traceId(n), 'hex')));
    clock.t = 100;
    // Handed over in two steps: until the last, every unknown trace may have been stored.
    stitcher.earlierTraces(idBytes(...Array.from({ length: 500 }, (_, k) => 1_000 + k)), false);
    expect(late(11)).toEqual(['maybe']);
    stitcher.earlierTraces(idBytes(21, 22), true);
    expect(late(12)).toEqual([undefined]);
    expect(late(21)).toEqual(['maybe']);
    expect(late(1_234)).toEqual(['maybe']);
    // Handed over again (a second done): ignored.
    stitcher.earlierTraces(idBytes(13), true);
    expect(late(13)).toEqual([undefined]);
    // A window after the start, nothing stored before it can join.
    clock.t = 5_001;
    expect(late(22)).toEqual([undefined]);
  });

  it('without ids stored before the start, hands them over to no effect', () => {
    const { stitcher } = setup({ lateTraceWindowMs: 5_000 });
    stitcher.earlierTraces(Buffer.from(traceId(7), 'hex'), true);
    stitcher.add(spans(7, 1));
    expect(stitcher.flush().map((t) => t.late)).toEqual([undefined]);
  });
});

/**
 * What the stitcher must do, written plainly (a Map per pending trace, scans instead of the heap
 * and the activity order), for the randomized comparison below.
 */
function referenceStitcher(config: StitchConfig & { rememberedTraces: number; lateTraceWindowMs: number }, clock: { now(): number }) {
  type Entry = { ids: Set<string>; held: number; lastArrivalMs: number; maxEndMs: number; touch: number; late: string | undefined };
  const pending = new Map<string, Entry>();
  const remembered = new Map<string, number>(); // trace id -> latest completion time, oldest first
  let forgottenMs = -Infinity;
  /** Forgotten trace id -> the completion time it was forgotten with. */
  const forgotten = new Map<string, number>();
  let newestEndMs = -Infinity;
  let touches = 0;
  let held = 0;
  const complete = (id: string, reason: string, out: string[][]) => {
    const e = pending.get(id)!;
    pending.delete(id);
    held -= e.held;
    out.push([id, String(e.ids.size), reason, String(e.late)]);
  };
  const byTouch = () => [...pending].sort((a, b) => a[1].touch - b[1].touch).map(([id]) => id);
  return {
    /**
     * Remembers the traces one call completed, in the order the stitcher reported them: traces the
     * watermark completes together come in its heap's order, which decides which is forgotten first.
     */
    remember(ids: string[]) {
      for (const id of ids) {
        remembered.delete(id);
        remembered.set(id, clock.now());
        while (remembered.size > config.rememberedTraces) {
          const [oldest, ms] = remembered.entries().next().value!;
          remembered.delete(oldest);
          forgottenMs = ms;
          forgotten.set(oldest, ms);
        }
      }
    },
    add(spans: { traceId: string; spanId: string; endMs: number }[]): string[][] {
      const now = clock.now();
      for (const s of spans) {
        let e = pending.get(s.traceId);
        if (!e) {
          const doneMs = remembered.get(s.traceId);
          // A trace forgotten within the window is `maybe`; one forgotten before it may still be,
          // as far as the filter's generations (a quarter of the window each) reach: 'maybe?'.
          const since = now - config.lateTraceWindowMs;
          const forgotMs = forgotten.get(s.traceId);
          const late =
            doneMs !== undefined
              ? now - doneMs <= config.lateTraceWindowMs
                ? 'joins'
                : 'fragment'
              : forgottenMs >= since && forgotMs !== undefined
                ? forgotMs >= since
                  ? 'maybe'
                  : 'maybe?'
                : undefined;
          pending.set(s.traceId, (e = { ids: new Set(), held: 0, lastArrivalMs: now, maxEndMs: -Infinity, touch: 0, late }));
        }
        e.ids.add(s.spanId);
        e.held++;
        held++;
        e.lastArrivalMs = now;
        e.touch = ++touches;
        e.maxEndMs = Math.max(e.maxEndMs, s.endMs);
        newestEndMs = Math.max(newestEndMs, s.endMs);
      }
      const out: string[][] = [];
      const mark = newestEndMs - config.latenessMs;
      for (const [id, e] of [...pending]) if (e.maxEndMs < mark) complete(id, 'watermark', out);
      if (held > config.maxPendingSpans) {
        const evictTo = config.maxPendingSpans - Math.floor(config.maxPendingSpans * 0.1);
        for (const id of byTouch()) if (held > evictTo) complete(id, 'evicted', out);
      }
      return out;
    },
    tick(): string[][] {
      const out: string[][] = [];
      for (const id of byTouch()) if (pending.get(id)!.lastArrivalMs <= clock.now() - config.idleMs) complete(id, 'idle', out);
      return out;
    },
    flush(): string[][] {
      const out: string[][] = [];
      for (const id of byTouch()) complete(id, 'flush', out);
      return out;
    },
  };
}

describe('stitcher against a plain reference', () => {
  it('completes the same traces, with the same spans, reasons and late parts, through thousands of random requests (slots reused, stale heap entries)', () => {
    let seed = 42;
    const random = () => ((seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0) / 2 ** 32);
    const config = { idleMs: 1_000, latenessMs: 2_000, maxPendingSpans: 40, rememberedTraces: 25, lateTraceWindowMs: 2_500 };
    const clock = { t: 0, now() { return this.t; } };
    const stitcher = createStitcher(config, clock);
    const reference = referenceStitcher(config, clock);
    // Sorted within one call: traces that the watermark completes together come in heap order.
    const sorted = (xs: string[][]) => xs.map((x) => x.join(' ')).sort();
    /** The stitcher's late marks by trace, of the last call, for the reference's 'maybe?'. */
    let lastMarks = new Map<string, string>();
    const seen = (done: CompletedTrace[]) => {
      reference.remember(done.map((t) => t.traceId));
      for (const t of done) kinds.add(t.reason).add(String(t.late));
      lastMarks = new Map(done.map((t) => [t.traceId, String(t.late)]));
      return sorted(done.map((t) => [t.traceId, String(t.spanCount), t.reason, String(t.late)]));
    };
    /** The reference's rows, a 'maybe?' taken as what the stitcher said when that is maybe or nothing. */
    const expectedOf = (rows: string[][]) =>
      sorted(rows.map(([id, count, reason, late]) => [id!, count!, reason!, late === 'maybe?' && ['maybe', 'undefined'].includes(lastMarks.get(id!)!) ? lastMarks.get(id!)! : late!]));
    let eventMs = 10_000;
    let completions = 0;
    const kinds = new Set<string>();
    for (let step = 0; step < 4_000; step++) {
      clock.t += Math.floor(random() * 300);
      eventMs += Math.floor(random() * 200) - 60;
      const roll = random();
      if (roll < 0.08) {
        expect(seen(stitcher.tick())).toEqual(expectedOf(reference.tick()));
        continue;
      }
      if (roll < 0.1) {
        expect(seen(stitcher.flush())).toEqual(expectedOf(reference.flush()));
        continue;
      }
      const sent: { traceId: string; spanId: string; endMs: number }[] = [];
      const spansOf: TraceSpan[] = [];
      for (let k = 1 + Math.floor(random() * 6); k > 0; k--) {
        const id = traceId(1 + Math.floor(random() * 40));
        // Now and then a span sent again (the same span id in its trace).
        const name = random() < 0.1 ? 'again' : `s${step}-${k}`;
        const endMs = eventMs + Math.floor(random() * 3_000) - 1_500;
        sent.push({ traceId: id, spanId: name, endMs });
        spansOf.push(span(svc, { id: name, traceId: id, start: endMs - 5, end: endMs }));
      }
      // The stitcher takes a request's spans trace by trace as its columns list them; the reference in that order too.
      const order = [...new Set(sent.map((s) => s.traceId))];
      const done = stitcher.add(columns(request(spansOf)));
      const expected = reference.add(order.flatMap((id) => sent.filter((s) => s.traceId === id)));
      expect(seen(done)).toEqual(expectedOf(expected));
      completions += done.length;
    }
    expect(completions).toBeGreaterThan(1_000);
    expect([...kinds].sort()).toEqual(['evicted', 'flush', 'fragment', 'idle', 'joins', 'maybe', 'undefined', 'watermark']);
    expect(seen(stitcher.flush())).toEqual(expectedOf(reference.flush()));
  });
});
