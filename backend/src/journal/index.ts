export {
  createJournal,
  DEFAULT_MEMORY_RETRY_AFTER_MS,
  DEFAULT_SEGMENT_BYTES,
  MEMORY_CHECK_INTERVAL_MS,
  RELOCATE_RETRY_MS,
  REPLAY_RETRY_MS,
} from './journal.js';
export type { Journal, JournalOptions, JournalStats, JournalReplayResult } from './journal.js';

