export * from './config/index.js';
export * from './alerts/index.js';
export * from './detect/index.js';
export * from './store/index.js';
export * from './engine/index.js';
export * from './api/index.js';
export * from './log/index.js';
export * from './cli/index.js';
