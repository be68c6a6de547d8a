import type { Migration } from '../migration.js';
import { numberBaselineEntries } from '../detection-schema.js';

/**
 * Baseline entries keyed by an identity number and a kind code instead of their texts
 * (`baseline_counts`; `baseline_entries` stays as a view), so that the checkpoint each batch writes
 * binds and compares less per row. Existing entries are moved over; safe to run again.
 */
const migration: Migration = {
  description: 'baseline entries keyed by identity number and kind code (baseline_counts)',
  up: numberBaselineEntries,
};

export default migration;
