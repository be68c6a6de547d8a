import { constants, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { getHeapStatistics, setFlagsFromString } from 'node:v8';

/**
 * How far V8 lets a heap grow past what its last full collection left before the next one, in
 * percent (V8's `--heap-growing-percent`). V8's own factor goes up to 4 on a machine with memory
 * to spare: under sustained load both threads' old generations filled with the spans and chains of
 * completed traces, ~4 times their live data (a pipeline heap of 400-680 MB holding ~100 MB live,
 * bench/README.md). At 60 the sampled peak RSS of `conduct serve` fell by a quarter to a third
 * (bench/ab-memory.mjs, interleaved rounds). At 100 (about twice the live data) the main thread
 * (20-30 MB live, marking started early because its room below the limit is under its young
 * generation's size) runs about half the full collections and the pipeline thread a third fewer.
 * On a loaded machine that read as noise (0.89-1.03, bench/README.md "Garbage collection by
 * thread"); on a quieter one, with the worker's young generation at 48 MB too, the whole server
 * took 0.90-0.95 of the CPU per span at 1.04-1.18 of the peak RSS (bench/README.md "Garbage
 * collection settings (issue 19, 2026-12-07, fifth)").
 */
export const HEAP_GROWING_PERCENT = 100;

/**
 * Sets {@link HEAP_GROWING_PERCENT} for every isolate of the process (V8 reads the flag each time
 * it sets a heap's next limit, so it applies from the next collection on, the pipeline thread's
 * included). Only flag a process whose memory conduct owns: `serve` calls it once at start. A
 * `--heap-growing-percent` given to node on its command line is left as it is (returns false).
 */
export function limitHeapGrowth(percent = HEAP_GROWING_PERCENT, execArgv: readonly string[] = process.execArgv): boolean {
  if (execArgv.some((arg) => /^--heap[-_]growing[-_]percent(=|$)/.test(arg))) return false;
  setFlagsFromString(`--heap-growing-percent=${Math.max(1, Math.floor(percent))}`);
  return true;
}

/**
 * The heap in use as the memory guard should see it: what the last full collection left, when that
 * is less than what the heap holds now. Under steady load the old generation fills with spans whose
 * traces have long been stored, and only the next full collection reclaims them; a guard reading
 * the heap as it is refuses ingest for that garbage, and while it refuses little is allocated, so
 * the collection that would clear it may not come. Live data that grows after a full collection is
 * seen at the next one, which growth itself brings about.
 */
export function createLiveHeapReader(): { read(): number; stop(): void } {
  let live: number | undefined;
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if (gcKind(entry) === constants.NODE_PERFORMANCE_GC_MAJOR) live = getHeapStatistics().used_heap_size;
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  return {
    read() {
      const used = getHeapStatistics().used_heap_size;
      return live === undefined ? used : Math.min(used, live);
    },
    stop: () => observer.disconnect(),
  };
}

function gcKind(entry: PerformanceEntry): number | undefined {
  return (entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind;
}
