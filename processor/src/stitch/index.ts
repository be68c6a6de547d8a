export {
  createStitcher,
  systemClock,
  COMPLETION_REASONS,
  DEFAULT_IDLE_MS,
  DEFAULT_LATENESS_MS,
  DEFAULT_MAX_PENDING_SPANS,
  DEFAULT_REMEMBERED_TRACES,
  DEFAULT_MAX_FUTURE_SKEW_MS,
  DEFAULT_LATE_TRACE_WINDOW_MS,
  LATE_PARTS,
} from './stitcher.js';
export type { Stitcher, StitchConfig, StitcherStats, CompletedTrace, CompletionReason, Clock, LatePart } from './stitcher.js';
export { createRecentClients, DEFAULT_RECENT_CLIENT_SPANS, DEFAULT_RECENT_CLIENT_AGE_MS } from './recent-clients.js';
export type { RecentClients, RecentClientsConfig, RecentClientsStats } from './recent-clients.js';
export { createRecentIds, MAX_RECENT_IDS, MAX_SEEDED_IDS } from './recent-ids.js';
export type { RecentIds, RecentIdsSeed } from './recent-ids.js';
