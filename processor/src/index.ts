export * from './model.js';
export * from './forward/index.js';
