export * from './model.js';
export * from './sinks/index.js';
