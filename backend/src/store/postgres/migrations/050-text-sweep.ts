import type { PostgresMigration } from '../migration.js';

/** Key of the advisory lock that orders chain writes (shared) against a sweep's start (exclusive): 'text'. */
export const TEXT_SWEEP_LOCK = 0x74657874;

/**
 * Freeing numbered texts no chain refers to any more (text-sweep.ts), safely while instances memo
 * text ids:
 * - `strings.gen`: the text generation in which a writer last looked the text up (numbered or
 *   found it); a sweep deletes only texts last looked up before its own generation.
 * - `text_sweep`: one row: the current generation (a sweep raises it when it starts), the
 *   instance sweeping and its heartbeat, and the table's size after the last sweep (when the next
 *   is due).
 * - `conduct_texts_at(generation)`: called by every statement that writes chains; it takes the
 *   sweep lock shared for the transaction and fails (SQLSTATE CT001) when the generation moved
 *   on, so no chain is written with ids memoed before a sweep started, and a sweep starts only
 *   once every such write has committed.
 */
const migration: PostgresMigration = {
  version: 50,
  description: 'text generations and the sweep of unreferenced numbered texts',
  up: `
    ALTER TABLE strings ADD COLUMN gen integer NOT NULL DEFAULT 0;

    CREATE TABLE text_sweep (
      id         integer PRIMARY KEY CHECK (id = 1),
      gen        integer NOT NULL,
      owner      text,
      beat_ms    bigint NOT NULL DEFAULT 0,
      high_after integer NOT NULL DEFAULT 0,
      rows_after bigint NOT NULL DEFAULT 0
    );
    INSERT INTO text_sweep (id, gen) VALUES (1, 1);

    CREATE FUNCTION conduct_texts_at(expected integer) RETURNS integer LANGUAGE plpgsql VOLATILE AS $fn$
    DECLARE
      current integer;
    BEGIN
      PERFORM pg_advisory_xact_lock_shared(${TEXT_SWEEP_LOCK});
      -- A statement of its own (a snapshot taken after the lock): a sweep that started while
      -- this one waited is seen.
      SELECT gen INTO current FROM text_sweep WHERE id = 1;
      IF current IS DISTINCT FROM expected THEN
        RAISE EXCEPTION 'numbered texts: generation % is over, % is current', expected, current USING ERRCODE = 'CT001';
      END IF;
      RETURN current;
    END
    $fn$;
  `,
};

export default migration;
