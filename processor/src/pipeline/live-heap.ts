import { constants, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';

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
