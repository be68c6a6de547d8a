export {
  createIdentityResolver,
  certificateId,
  serviceOf,
  DEFAULT_IDENTITY_RULES,
  MAX_IDENTITY_LENGTH,
  UNKNOWN_SERVICE,
} from './resolver.js';
export type { IdentityResolver, ResolvedIdentity, TraceSpan } from './resolver.js';
