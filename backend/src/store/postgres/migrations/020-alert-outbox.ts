import type { PostgresMigration } from '../migration.js';

/**
 * The alert delivery outbox (as SQLite's migration 060): one row per alert event and sink,
 * written in the detection checkpoint that raised the event, worked by the sink workers.
 * `alerts.delivery_seq` numbers an alert's events. Times are wall-clock ms.
 */
const migration: PostgresMigration = {
  version: 20,
  description: 'alert delivery outbox: deliveries per alert event and sink, delivery sequence per alert',
  up: `
    ALTER TABLE alerts ADD COLUMN delivery_seq integer NOT NULL DEFAULT 0;
    CREATE TABLE alert_outbox (
      id          bigserial PRIMARY KEY,
      alert_id    text COLLATE "C" NOT NULL,
      seq         integer NOT NULL,
      sink        text COLLATE "C" NOT NULL,
      event       text COLLATE "C" NOT NULL,
      payload     text NOT NULL,
      state       text COLLATE "C" NOT NULL,
      attempts    integer NOT NULL DEFAULT 0,
      due_ms      double precision NOT NULL,
      last_error  text,
      created_ms  double precision NOT NULL,
      done_ms     double precision,
      UNIQUE (alert_id, seq, sink)
    );
    CREATE INDEX alert_outbox_due ON alert_outbox (sink, due_ms, id) WHERE state = 'pending';
    CREATE INDEX alert_outbox_delivered ON alert_outbox (done_ms) WHERE state = 'delivered';
  `,
};

export default migration;
