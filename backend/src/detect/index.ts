export * from './detection.js';
export * from './detectors/index.js';
export * from './finding.js';
export * from './identity-context.js';
export * from './schema.js';
export * from './score.js';
export * from './summary.js';
export * from './techniques.js';
