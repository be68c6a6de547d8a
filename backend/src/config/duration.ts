import { z } from 'zod';

const UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/** Parses `500ms`, `5s`, `1h`, `7d`, `1h30m` into milliseconds; undefined when malformed. */
export function parseDuration(text: string): number | undefined {
  const trimmed = text.trim();
  if (!/^(\d+(\.\d+)?(ms|s|m|h|d|w))+$/.test(trimmed)) return undefined;
  let total = 0;
  for (const m of trimmed.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g)) {
    total += Number(m[1]) * UNITS[m[2]!]!;
  }
  return total;
}

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
};

/** Parses `64MiB`, `512kb`, `1048576B` into bytes; undefined when malformed or without a unit. */
export function parseSize(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]+)$/i.exec(text.trim());
  if (!m) return undefined;
  const unit = SIZE_UNITS[m[2]!.toLowerCase()];
  if (unit === undefined) return undefined;
  return Math.floor(Number(m[1]) * unit);
}

/** A config value read as a quantity: the number, or why it was refused. */
export type QuantityResult = { ok: true; value: number } | { ok: false; problem: string };

/** `0`, `"0"`: the one bare number taken, since zero is zero in every unit. */
const isZero = (v: string | number) => v === 0 || (typeof v === 'string' && /^\s*0+\s*$/.test(v));
const isBareNumber = (v: string | number) => typeof v === 'number' || /^\s*\d+(\.\d+)?\s*$/.test(v);

/**
 * A duration key's value into milliseconds. The unit is required: a bare number (`idle: 5`) is
 * refused rather than read as milliseconds, except 0.
 */
export function durationFromConfig(v: string | number): QuantityResult {
  if (isZero(v)) return { ok: true, value: 0 };
  if (isBareNumber(v)) return { ok: false, problem: `${v} has no unit: write a duration such as ${v}s, ${v}ms, ${v}m or ${v}h` };
  const ms = parseDuration(v as string);
  if (ms === undefined) return { ok: false, problem: `"${v}" is not a duration such as 500ms, 5s, 1h or 7d` };
  return { ok: true, value: ms };
}

/** A size key's value into bytes. The unit is required (`64MiB`, `1048576B`), except for 0. */
export function sizeFromConfig(v: string | number): QuantityResult {
  if (isZero(v)) return { ok: true, value: 0 };
  if (isBareNumber(v)) return { ok: false, problem: `${v} has no unit: write a size such as ${v}B, ${v}KiB or ${v}MiB` };
  const bytes = parseSize(v as string);
  if (bytes === undefined) return { ok: false, problem: `"${v}" is not a size such as 64MiB, 512KB or 1048576B` };
  return { ok: true, value: bytes };
}

/**
 * The zod schemas of a duration and of a size value, for the config schema and for the components
 * that own a piece of it (sinks, detection). Both need their unit and come out in ms / bytes.
 */
/** A duration with its unit (`500ms`, `5s`, `1h`, `7d`), into milliseconds; a bare number other than 0 is refused. */
export const durationSchema = z.union([z.string(), z.number().nonnegative()]).transform((v, ctx) => quantity(durationFromConfig(v), ctx));

/** A size with its unit (`64MiB`, `512KB`, `1048576B`), into bytes; a bare number other than 0 is refused. */
export const sizeSchema = z.union([z.string(), z.number().int().nonnegative()]).transform((v, ctx) => quantity(sizeFromConfig(v), ctx));

function quantity(result: QuantityResult, ctx: z.RefinementCtx): number {
  if (result.ok) return result.value;
  ctx.addIssue({ code: z.ZodIssueCode.custom, message: result.problem });
  return z.NEVER;
}
