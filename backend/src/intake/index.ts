export { createIntakeThread } from './host.js';
export type { IntakeThread, IntakeThreadOptions } from './host.js';
export type { IntakeData, IntakeReceiver } from './protocol.js';
