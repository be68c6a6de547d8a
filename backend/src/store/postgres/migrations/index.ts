import type { PostgresMigration } from '../migration.js';
import chains from './001-chains.js';
import detection from './002-detection.js';
import alertSearch from './003-alert-search.js';
import detectionDoubles from './004-detection-doubles.js';
import chainReceived from './005-chain-received.js';
import pathParameters from './010-path-parameters.js';
import alertOutbox from './020-alert-outbox.js';
import edgesByLastSeen from './030-edges-by-last-seen.js';
import cluster from './040-cluster.js';
import heldChainsByStart from './045-held-chains-by-start.js';
import textSweep from './050-text-sweep.js';
import alertsByLastSeenId from './056-alerts-by-last-seen-id.js';
import heldChainsDeflated from './060-held-chains-deflated.js';

/** Every migration of the PostgreSQL store, in version order (checked at start-up). */
export const POSTGRES_MIGRATIONS: readonly PostgresMigration[] = [
  chains, detection, alertSearch, detectionDoubles, chainReceived, pathParameters, alertOutbox, edgesByLastSeen, cluster, heldChainsByStart, textSweep,
  alertsByLastSeenId, heldChainsDeflated,
];
