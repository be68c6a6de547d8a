export { configSchema, DEFAULT_IDENTITY_RULES, DEFAULT_MAX_REQUEST_BYTES, DEFAULT_MAX_MEMORY_BYTES } from './schema.js';
export type { Config, ConfigInput, SinkConfig, ForwardConfig, PolicyConfig } from './schema.js';
export { parseConfig, parseConfigText, loadConfigFile, valuesFromEnvironment, ConfigError } from './load.js';
export { expandEnv, textsToHide, MIN_HIDDEN_LENGTH } from './env.js';
export type { Environment, EnvExpansion, ExpandedValue } from './env.js';
export { parseDuration, parseSize } from './duration.js';
export { configSummary } from './summary.js';
