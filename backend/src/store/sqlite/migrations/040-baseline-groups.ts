import type { Migration } from '../migration.js';

/**
 * The group of each baseline (its identity's partition in a cluster, 0 on one instance), so that
 * baselines can be loaded a group at a time (contracts.ts, BaselineScope). The column is added
 * only when missing, so the migration is safe on a database that already has it.
 */
const migration: Migration = {
  description: 'baseline groups (partitions) for loading baselines by group',
  up(db) {
    const columns = (db.prepare('PRAGMA table_info(baseline_identities)').all() as Array<{ name: string }>).map((c) => c.name);
    if (!columns.includes('grp')) db.exec('ALTER TABLE baseline_identities ADD COLUMN grp INTEGER NOT NULL DEFAULT 0');
    db.exec('CREATE INDEX IF NOT EXISTS baseline_identities_by_group ON baseline_identities (grp)');
  },
};

export default migration;
