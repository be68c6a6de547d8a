export * from './model.js';
export * from './receiver/index.js';
export * from './forward/index.js';
