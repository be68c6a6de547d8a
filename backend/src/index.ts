export * from './config/index.js';
export * from './alerts/index.js';
export * from './detect/index.js';
