import { z } from 'zod';
import { durationSchema } from '../config/duration.js';
import { DEFAULT_LEASE_TIMEOUT_MS, DEFAULT_PARTITIONS, MAX_PARTITIONS, type ClusterConfig } from './config.js';

/**
 * The cluster's piece of the configuration schema (`cluster`): the cluster owns its type and
 * defaults (config.ts); the config schema (config/schema.ts) puts it in place.
 */
export const clusterSchema = z
  .object({
    /** Partitions identities hash into; the same on every instance of a cluster. */
    partitions: z.number().int().min(1).max(MAX_PARTITIONS).default(DEFAULT_PARTITIONS),
    /** An instance silent this long is taken for dead and its partitions move. */
    leaseTimeout: durationSchema.default(`${DEFAULT_LEASE_TIMEOUT_MS}ms`),
  })
  .strict() satisfies z.ZodType<ClusterConfig, z.ZodTypeDef, unknown>;
