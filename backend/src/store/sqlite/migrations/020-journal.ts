import { JOURNAL_SCHEMA } from '../legacy-journal-schema.js';

/**
 * The ingest journal (backend/src/journal): every accepted OTLP request, kept until every trace
 * it touched is stored. The journal applies the same idempotent script when it opens a database
 * on its own.
 */
const migration = {
  description: 'ingest journal of accepted requests and their unstored traces',
  up: JOURNAL_SCHEMA,
};

export default migration;
