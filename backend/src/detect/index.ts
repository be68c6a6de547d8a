export { createDetection } from './detection.js';
export {
  DEDUP_WINDOW_MS,
  MAX_IDENTITIES,
  MAX_ALERTS_PER_QUERY,
  DEFAULT_ALERTS_PER_QUERY,
  DEFAULT_CARDINALITY_LIMITS,
  DEFAULT_MAX_NEW_IDENTITIES_PER_MINUTE,
  DEFAULT_MAX_ALERTS_PER_IDENTITY_PER_HOUR,
  IDENTITY_FLOOD_WINDOW_MS,
  ALERT_FLOOD_WINDOW_MS,
  FLOOD_IDENTITY,
  IDENTITY_FLOOD_KEY,
  ALERT_FLOOD_KEY,
  FLOOD_MAX_SEVERITY,
  MAX_HELD_CHAINS_IN_GRAPH,
} from './limits.js';
export type {
  Detection,
  DetectionOptions,
  DetectionStats,
  AnalyseResult,
  AlertFilter,
  IdentityDetection,
  LateChange,
} from './detection.js';
export type { LearningConfig, CardinalityLimits } from './limits.js';
export { learningSchema, detectionSchema, policySchema, cardinalityLimitFields, type PolicyConfig } from './settings.js';
export { ALL_DETECTORS } from './detectors/index.js';
export type { Finding, DetectionContext, DetectorFn } from './finding.js';
export { policyFor, globToRegExp, sensitiveReason } from './identity-context.js';
export { scoreFindings } from './score.js';
export type { BaselineSummary, IdentityGraph, GraphNode, GraphEdge, SummaryItem } from './summary.js';
export { techniquesForOperation } from './techniques.js';
export { createDetectionAnalyser, announce, changesOf } from './analyser.js';
export type { AlertEmitter } from './analyser.js';
