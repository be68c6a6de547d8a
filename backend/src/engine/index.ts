export { createEngine } from './engine.js';
export type { Engine, EngineOptions, EngineStats, Analyser, AnalysisContext, AlertListener, AlertEvent } from './engine.js';
