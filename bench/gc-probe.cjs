// Preloaded into `conduct serve` by bench/gc-serve.mjs (NODE_OPTIONS=--require, which, unlike
// --import, also runs in worker threads). With GC_PROBE_NVP=1 turns on V8's --trace-gc-nvp (not
// allowed in NODE_OPTIONS; V8's flags are the process's, so set once, before the pipeline thread
// starts, it covers both isolates); GC_PROBE_FLAGS sets other V8 flags, GC_PROBE_WORKER_YOUNG_MB
// the pipeline thread's young generation. With GC_PROBE_DIR, samples what each thread allocates, including what the
// next scavenge or mark-compact frees (V8's sampling heap profiler keeps only live objects unless
// told otherwise), and writes one `.heapprofile` per thread to GC_PROBE_DIR. With
// GC_PROBE_SURVIVORS=1 as well, leaves out what a scavenge frees: what remains is what survived the
// young generation (promoted, or still live), the allocations that make mark-compacts; young
// objects a mark-compact frees are counted too.
'use strict';
const { isMainThread, threadId } = require('node:worker_threads');
if (isMainThread) {
  const v8 = require('node:v8');
  if (process.env.GC_PROBE_NVP === '1') v8.setFlagsFromString('--trace-gc-nvp');
  // Other V8 flags to try (e.g. --heap-growing-percent=100), also put in execArgv, where conduct
  // looks for flags given to node (limitHeapGrowth leaves a growth given there as it is).
  for (const flag of (process.env.GC_PROBE_FLAGS ?? '').split(' ').filter(Boolean)) {
    v8.setFlagsFromString(flag);
    process.execArgv.push(flag);
  }
  // A young generation size for every Worker started (the pipeline thread's), whatever its build says.
  const youngMb = Number(process.env.GC_PROBE_WORKER_YOUNG_MB ?? 0);
  if (youngMb > 0) {
    const threads = require('node:worker_threads');
    const Original = threads.Worker;
    threads.Worker = class extends Original {
      constructor(url, options = {}) {
        super(url, { ...options, resourceLimits: { ...options.resourceLimits, maxYoungGenerationSizeMb: youngMb } });
      }
    };
    require('node:module').syncBuiltinESMExports();
  }
}
const dir = process.env.GC_PROBE_DIR;
if (dir) {
  const { Session } = require('node:inspector');
  const { writeFileSync } = require('node:fs');
  const { join } = require('node:path');
  const session = new Session();
  session.connect();
  const post = (method, params) => new Promise((resolve, reject) => session.post(method, params, (err, r) => (err ? reject(err) : resolve(r))));
  const name = `${isMainThread ? 'main' : 'worker'}-${process.pid}-${threadId}.heapprofile`;
  // Sampled from start to the end; the profile so far is written every 2 s (the pipeline thread
  // is ended without a chance to write at exit), the last one written covers the run.
  const save = async () => {
    const { profile } = await post('HeapProfiler.getSamplingProfile');
    writeFileSync(join(dir, name), JSON.stringify(profile));
  };
  post('HeapProfiler.enable')
    .then(() => post('HeapProfiler.startSampling', { samplingInterval: 32768, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: process.env.GC_PROBE_SURVIVORS !== '1' }))
    .then(() => setInterval(() => void save(), 2000).unref());
}
