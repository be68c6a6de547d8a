export {
  createJournal,
  DEFAULT_MEMORY_RETRY_AFTER_MS,
  MEMORY_CHECK_INTERVAL_MS,
  REPLAY_RETRY_MS,
} from './journal.js';
export type { Journal, JournalOptions, JournalStats, JournalReplayResult } from './journal.js';
export { JOURNAL_SCHEMA, applyJournalSchema } from './schema.js';
export { openJournalDatabase, JOURNAL_CACHE_KIB } from './connection.js';
