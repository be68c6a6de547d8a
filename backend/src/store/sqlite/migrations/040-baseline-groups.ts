/**
 * The group of each baseline (its identity's partition in a cluster, 0 on one instance), so that
 * baselines can be loaded a group at a time (contracts.ts, BaselineScope).
 */
const migration = {
  description: 'baseline groups (partitions) for loading baselines by group',
  up: `ALTER TABLE baseline_identities ADD COLUMN grp INTEGER NOT NULL DEFAULT 0;
       CREATE INDEX baseline_identities_by_group ON baseline_identities (grp);`,
};

export default migration;
