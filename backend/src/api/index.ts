export {
  createApi,
  DEFAULT_API_HOST,
  DEFAULT_API_PORT,
  MAX_LIMIT,
  DEFAULT_CHAIN_LIMIT,
  DEFAULT_ALERT_LIMIT,
  DEFAULT_IDENTITY_LIMIT,
  MAX_ID_LENGTH,
  MAX_BODY_BYTES,
} from './server.js';
export type { ApiOptions, ApiServer } from './server.js';
export type { AlertsProvider, AlertQuery, IdentityInsights, IdentityLearning, IdentityStatus } from './providers.js';
export { noAlerts, noInsights } from './providers.js';
export { HttpError } from './http-error.js';
export { CONTENT_SECURITY_POLICY, tokenMatches } from './security.js';
export { DEFAULT_UI_DIR } from './static-ui.js';
