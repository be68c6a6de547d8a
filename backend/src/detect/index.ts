export {
  createDetection,
  DEDUP_WINDOW_MS,
  MAX_IDENTITIES,
  MAX_ALERTS_PER_QUERY,
  DEFAULT_ALERTS_PER_QUERY,
} from './detection.js';
export type {
  Detection,
  DetectionOptions,
  DetectionStats,
  AnalyseResult,
  AlertFilter,
  IdentityDetection,
  LearningConfig,
} from './detection.js';
export { ALL_DETECTORS } from './detectors/index.js';
export type { Finding, DetectionContext, DetectorFn } from './finding.js';
export { policyFor, globToRegExp, sensitiveReason } from './identity-context.js';
export { DETECTION_SCHEMA, applyDetectionSchema } from './schema.js';
export { scoreFindings } from './score.js';
export type { BaselineSummary, IdentityGraph, GraphNode, GraphEdge, SummaryItem } from './summary.js';
export { techniquesForOperation } from './techniques.js';
export { createDetectionAnalyser } from './analyser.js';
export type { AlertEmitter } from './analyser.js';
