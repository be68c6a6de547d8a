export { createEngine, DEFAULT_LATE_TRACE_WINDOW_MS } from './engine.js';
export { mergeLatePart, splitLateParts, hasLateParts, addedChains, LATE_OUTCOMES } from './late.js';
export type { LateMerge, LateOutcome, LateSplit } from './late.js';
export type { Engine, EngineOptions, EngineStats, Analyser, AnalysisContext, AlertListener, AlertEvent } from './engine.js';
export { refuseWhileStorageDown, STORAGE_UNAVAILABLE } from './storage-gate.js';
export { createOperationTemplater } from './templates.js';
export type { OperationTemplater, OperationTemplaterOptions } from './templates.js';
