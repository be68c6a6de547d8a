import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { ZodIssue } from 'zod';
import { configSchema, type Config } from './schema.js';
import { expandEnv, type Environment, type ExpandedValue } from './env.js';

/** A configuration problem, with the offending key in the message. Stops start-up. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

const keyOf = (path: ReadonlyArray<string | number>) => path.join('.');

function describe(issue: ZodIssue): string {
  const key = issue.path.length ? keyOf(issue.path) : '(top level)';
  if (issue.code === 'unrecognized_keys') {
    const prefix = issue.path.length ? `${keyOf(issue.path)}.` : '';
    return `unknown key ${issue.keys.map((k) => `"${prefix}${k}"`).join(', ')}`;
  }
  return `${key}: ${issue.message}`;
}

/**
 * A message about `issue` that shows no value read from the environment: where the value came
 * from a variable, the text as the file wrote it (`${env:NAME}`) stands in for it.
 */
function describeHiding(issue: ZodIssue, expanded: readonly ExpandedValue[]): string {
  let message = describe(issue);
  const key = keyOf(issue.path);
  for (const e of expanded) {
    const related = key === '' || e.key === key || e.key.startsWith(`${key}.`) || key.startsWith(`${e.key}.`);
    if (related && e.expanded !== '') message = message.split(e.expanded).join(e.original);
  }
  return message;
}

/**
 * Validates a plain object (parsed YAML, or built in code) into a Config. `expanded` lists the
 * values that came from environment variables (see expandEnv): a typed one the schema wants as
 * text is taken as its text, and error messages show the reference instead of the value.
 */
export function parseConfig(input: unknown, source = 'config', expanded: readonly ExpandedValue[] = []): Config {
  let result = configSchema.safeParse(input ?? {});
  if (!result.success && expanded.some((e) => e.typed)) {
    const untyped = untypeWhereRefused(input, result.error.issues, expanded);
    if (untyped !== input) result = configSchema.safeParse(untyped);
  }
  if (!result.success) {
    const lines = result.error.issues.map((issue) => describeHiding(issue, expanded));
    throw new ConfigError(`${source}: ${lines.join('; ')}`);
  }
  if (expanded.length) environmentValues.set(result.data, expanded);
  return result.data;
}

/** `input` with the typed environment values the schema refused put back as their text. */
function untypeWhereRefused(input: unknown, issues: readonly ZodIssue[], expanded: readonly ExpandedValue[]): unknown {
  const refused = new Set(issues.map((i) => keyOf(i.path)));
  const back = expanded.filter((e) => e.typed && refused.has(e.key));
  if (back.length === 0) return input;
  const copy = structuredClone(input) as Record<string, unknown>;
  for (const e of back) {
    const path = e.key.split('.');
    let at = copy as Record<string, unknown>;
    for (const part of path.slice(0, -1)) at = at[part] as Record<string, unknown>;
    at[path.at(-1)!] = e.expanded;
  }
  return copy;
}

/** Values of a parsed configuration that came from environment variables (never to be logged). */
const environmentValues = new WeakMap<Config, readonly ExpandedValue[]>();

/**
 * What of `config` came from environment variables: each value's text and the reference the file
 * wrote. The command hides these in every log line.
 */
export function valuesFromEnvironment(config: Config): readonly ExpandedValue[] {
  return environmentValues.get(config) ?? [];
}

/**
 * Parses YAML text, expands `${env:NAME}` references from `env`, and validates it. Throws
 * ConfigError naming the key (and the variable, when one is not set).
 */
export function parseConfigText(text: string, source: string, env: Environment): Config {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`${source}: invalid YAML: ${(err as Error).message}`);
  }
  const expansion = expandEnv(doc, env);
  if (expansion.problems.length) throw new ConfigError(`${source}: ${expansion.problems.join('; ')}`);
  return parseConfig(expansion.value, source, expansion.expanded);
}

/** Reads and validates a YAML configuration file; `${env:NAME}` references read `env`. */
export function loadConfigFile(path: string, env: Environment = process.env): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  return parseConfigText(text, path, env);
}
