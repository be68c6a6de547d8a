export { replayFiles, formatReplaySummary, PROGRESS_INTERVAL_MS, OVERLOAD_WAIT_MS, MAX_REPORTED_ERRORS } from './replay.js';
export type { ReplayOptions, ReplaySummary, ReplayProgress } from './replay.js';
export { readRequests, detectFormat, DEFAULT_MAX_REQUEST_BYTES as DEFAULT_MAX_REPLAY_REQUEST_BYTES } from './read-requests.js';
export type { RequestFormat, RequestItem } from './read-requests.js';
export { runReplay, registerReplayCommand } from './command.js';
export type { ReplayFlags, ReplayCommandDeps } from './command.js';
export { readAuditFile, readAuditRequests, isAuditFormat, AUDIT_FORMATS, MAX_SORTED_AUDIT_CALLS, AUDIT_CALLS_PER_REQUEST } from './read-audit.js';
export type { AuditFormat, AuditCounts } from './read-audit.js';
