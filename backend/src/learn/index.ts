export * from './baseline.js';
export * from './rate.js';
export * from './shape.js';
export * from './user-agent.js';
export * from './chain-model.js';
export * from './rename.js';
export * from './path-siblings.js';
