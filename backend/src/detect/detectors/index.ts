import type { DetectorFn } from '../finding.js';
import { credentialReuse } from './credential-reuse.js';
import { fanOut } from './fan-out.js';
import { newOperation } from './new-operation.js';
import { newPeer } from './new-peer.js';
import { newSource } from './new-source.js';
import { policy } from './policy.js';
import { rateBurst } from './rate-burst.js';
import { unusualChain } from './unusual-chain.js';

export * from './credential-reuse.js';
export * from './fan-out.js';
export * from './new-operation.js';
export * from './new-peer.js';
export * from './new-source.js';
export * from './policy.js';
export * from './rate-burst.js';
export * from './unusual-chain.js';

/** The eight detectors, in the order their alerts are listed for a chain. */
export const ALL_DETECTORS: readonly DetectorFn[] = [
  policy,
  credentialReuse,
  newPeer,
  newOperation,
  newSource,
  unusualChain,
  fanOut,
  rateBurst,
];
