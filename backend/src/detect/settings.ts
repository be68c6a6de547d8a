import { z } from 'zod';
import { durationSchema } from '../config/duration.js';
import { DEFAULT_CARDINALITY_LIMITS, DEFAULT_HUMANS_MODE, DEFAULT_LEARNING, DEFAULT_RELEASE_GRACE_MS, HUMANS_MODES, type CardinalityLimits, type LearningConfig } from './limits.js';

/**
 * Detection's pieces of the configuration schema: `learning`, `detection`, `policies[]` and the
 * detection caps of `limits`. Detection owns them (their types and defaults); the config schema
 * (config/schema.ts) puts them in place.
 */

/** `learning`: when an identity starts enforcing, and when baseline entries age out. */
export const learningSchema = z
  .object({
    /** Calls an identity needs before it can enforce. */
    minCalls: z.number().int().nonnegative().default(DEFAULT_LEARNING.minCalls),
    /** Event time an identity needs before it can enforce. */
    period: durationSchema.default(`${DEFAULT_LEARNING.period}ms`),
    /** Baseline entries unseen for this long age out. */
    forgetAfter: durationSchema.default(`${DEFAULT_LEARNING.forgetAfter}ms`),
  })
  .strict() satisfies z.ZodType<LearningConfig, z.ZodTypeDef, unknown>;

/** `detection`: how findings are judged. */
export const detectionSchema = z
  .object({
    /** Novelty findings on people (IAM users, SSO sessions, enduser.id): at most low, as for machines, or none. */
    humans: z.enum(HUMANS_MODES).default(DEFAULT_HUMANS_MODE),
    /** How long after a new service.version is first seen its new internal operations and peers count as its release; 0 turns releases off. */
    releaseGrace: durationSchema.default(`${DEFAULT_RELEASE_GRACE_MS}ms`),
  })
  .strict();

/** The detection caps of `limits` (the object also holds the receivers' `maxMemoryBytes`). */
export const cardinalityLimitFields = {
  /** Identities with a learned baseline, at most; further new identities are refused (never evicting). */
  maxIdentities: z.number().int().positive().default(DEFAULT_CARDINALITY_LIMITS.maxIdentities),
  /** New identities admitted per minute of event time; beyond it one flood alert is raised. */
  maxNewIdentitiesPerMinute: z.number().int().positive().default(DEFAULT_CARDINALITY_LIMITS.maxNewIdentitiesPerMinute),
  /** Alerts one identity raises per hour of event time; beyond it its findings fold into one flood alert. */
  maxAlertsPerIdentityPerHour: z.number().int().positive().default(DEFAULT_CARDINALITY_LIMITS.maxAlertsPerIdentityPerHour),
} satisfies { [K in keyof CardinalityLimits]: z.ZodType<CardinalityLimits[K], z.ZodTypeDef, unknown> };

/** One `policies[]` entry: what an identity is for and what it may touch (identity context). */
export const policySchema = z
  .object({
    /** Identity id or glob (`*` any run of characters, `?` one character). */
    match: z.string().min(1),
    /** What this identity is for, in a sentence. Shown in the UI and alerts. */
    purpose: z.string().optional(),
    /** Peers (globs) this identity may contact. */
    expectedPeers: z.array(z.string()).optional(),
    /** Targets (globs): buckets, tables, destinations, tools, accounts it may touch. */
    approvedTargets: z.array(z.string()).optional(),
    /** Regions it may act from. */
    allowedRegions: z.array(z.string()).optional(),
    /** Operations (globs) it must never perform. */
    deniedOperations: z.array(z.string()).optional(),
    /** Operations (globs) that raise severity when they appear in an alert. */
    sensitiveOperations: z.array(z.string()).optional(),
  })
  .strict();

/** An identity's declared context (`policies[]`), first match wins. */
export type PolicyConfig = z.output<typeof policySchema>;
