export * from './config/index.js';
export * from './alerts/index.js';
