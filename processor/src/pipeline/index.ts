export {
  createPipeline,
  DEFAULT_MAX_QUEUED_BATCHES,
  DEFAULT_MAX_QUEUED_SPANS,
  DEFAULT_RETRY_AFTER_MS,
  MAX_BATCHES_PER_WRITE,
  MAX_SPANS_PER_WRITE,
  MAX_TRACES_PER_BATCH,
} from './pipeline.js';
export type { Pipeline, PipelineOptions, PipelineStats } from './pipeline.js';
export { createCollectingConsumer, createGatedConsumer, createFailingConsumer } from './testing.js';
export type { CollectingConsumer, GatedConsumer } from './testing.js';
export { attributeKeepFor } from './keep.js';
export { createPipelineThread, DEFAULT_THREAD_MAX_QUEUED_SPANS, DEFAULT_WORKER_YOUNG_GENERATION_MB, FAILED_RETRY_AFTER_MS } from './thread.js';
export type { MetricsJson, PipelineThread, PipelineThreadOptions } from './thread.js';
export type { WorkerExtension, WorkerExtensionContext, WorkerExtensionModule } from './protocol.js';
export { createLiveHeapReader, HEAP_GROWING_PERCENT, limitHeapGrowth } from './live-heap.js';
