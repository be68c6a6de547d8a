export { assembleBackend } from './assemble.js';
export type { AssembleOptions, Assembled } from './assemble.js';
