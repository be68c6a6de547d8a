import { DETECTION_SCHEMA } from '../detection-schema.js';

/**
 * Learned baselines (per identity/kind/key entries and per-identity rate state), alerts with the
 * indexes behind the API's filters, held-out chains and operator suppressions. The detection
 * service applies the same idempotent script when it opens a database on its own.
 */
const migration = {
  description: 'baselines, alerts, held-out chains and finding suppressions',
  up: DETECTION_SCHEMA,
};

export default migration;
