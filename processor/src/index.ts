export * from './model.js';
export * from './receiver/index.js';
export * from './forward/index.js';
export * as semconv from './semconv.js';
export * from './identity/index.js';
export * from './calls/index.js';
export * from './stitch/index.js';
export * from './pipeline/index.js';
export * from './audit/index.js';
