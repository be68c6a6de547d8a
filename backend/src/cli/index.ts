export { startConduct, CONDUCT_VERSION, RETENTION_SWEEP_MS } from './start.js';
export type { StartOptions, RunningConduct, FlushOptions } from './start.js';
export { main, serveConfig, EXIT_OK, EXIT_FAILURE, EXIT_USAGE } from './main.js';
export type { ServeFlags } from './main.js';
export { splitEndpoint } from './endpoint.js';
