import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { ZodIssue } from 'zod';
import { configSchema, type Config } from './schema.js';

/** A configuration problem, with the offending key in the message. Stops start-up. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

function describe(issue: ZodIssue): string {
  const key = issue.path.length ? issue.path.join('.') : '(top level)';
  if (issue.code === 'unrecognized_keys') {
    const prefix = issue.path.length ? `${issue.path.join('.')}.` : '';
    return `unknown key ${issue.keys.map((k) => `"${prefix}${k}"`).join(', ')}`;
  }
  return `${key}: ${issue.message}`;
}

/** Validates a plain object (parsed YAML, or built in code) into a Config. */
export function parseConfig(input: unknown, source = 'config'): Config {
  const result = configSchema.safeParse(input ?? {});
  if (!result.success) {
    const lines = result.error.issues.map(describe);
    throw new ConfigError(`${source}: ${lines.join('; ')}`);
  }
  return result.data;
}

/** Reads and validates a YAML configuration file. */
export function loadConfigFile(path: string): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`${path}: invalid YAML: ${(err as Error).message}`);
  }
  return parseConfig(doc, path);
}
