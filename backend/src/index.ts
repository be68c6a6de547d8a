export * from './config/index.js';
export * from './alerts/index.js';
export * from './detect/index.js';
export * from './store/index.js';
export * from './engine/index.js';
export * from './api/index.js';
export * from './log/index.js';
export * from './cli/index.js';
export * from './replay/index.js';
export * from './journal/index.js';
export * from './demo/index.js';
export * from './assemble/index.js';
export * from './cluster/index.js';
/** For crash-injection tests: what a failpoint prints before it kills the process. */
export { FAILPOINT_MARK } from './failpoint.js';
