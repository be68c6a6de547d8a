import type { Migration } from '../migration.js';

/**
 * The alert delivery outbox: one row per alert event and sink, written in the detection
 * checkpoint that raised the event, worked by the sink workers (pending, delivered, dead).
 * `alerts.delivery_seq` numbers an alert's events (the delivery sequence receivers deduplicate on).
 */
const migration: Migration = {
  description: 'alert delivery outbox: deliveries per alert event and sink, delivery sequence per alert',
  up: `
    ALTER TABLE alerts ADD COLUMN delivery_seq INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE alert_outbox (
      id          INTEGER PRIMARY KEY,
      alert_id    TEXT    NOT NULL,
      seq         INTEGER NOT NULL,
      sink        TEXT    NOT NULL,
      event       TEXT    NOT NULL,
      payload     TEXT    NOT NULL,
      state       TEXT    NOT NULL,
      attempts    INTEGER NOT NULL DEFAULT 0,
      due_ms      INTEGER NOT NULL,
      last_error  TEXT,
      created_ms  INTEGER NOT NULL,
      done_ms     INTEGER,
      UNIQUE (alert_id, seq, sink)
    );
    CREATE INDEX alert_outbox_due ON alert_outbox (sink, due_ms, id) WHERE state = 'pending';
    CREATE INDEX alert_outbox_delivered ON alert_outbox (done_ms) WHERE state = 'delivered';
  `,
};

export default migration;
