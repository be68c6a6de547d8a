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
export { evaluateReadiness, READINESS_CHECK_TIMEOUT_MS } from './readiness.js';
export type { ReadinessCheck, ReadinessReport } from './readiness.js';
export { matchUiRoute, UI_ROUTES } from './ui-routes.js';
export type { UiRoute } from './ui-routes.js';
