/**
 * Environment variables in configuration values, in the OpenTelemetry Collector's syntax:
 * `${env:NAME}` is replaced by the variable's value, `${env:NAME:-default}` by `default` when the
 * variable is not set (a set but empty variable gives ""), and `$${` stands for a literal `${`.
 * References are expanded in values, never in keys, anywhere in the file. A value that is one
 * reference and nothing else takes the type its text reads as (`${env:MAX}` with MAX=5 is the
 * number 5), so numbers and booleans can come from the environment too; where the schema wants a
 * string, parseConfig keeps the text.
 */

/** What the environment is read from (process.env at the command's entry point). */
export type Environment = Readonly<Record<string, string | undefined>>;

/** One value that came, wholly or in part, from the environment. */
export interface ExpandedValue {
  /** Its key, dotted (`alerts.sinks.0.secret`). */
  key: string;
  /** The value as the file wrote it (`Bearer ${env:TOKEN}`): what messages and logs show instead. */
  original: string;
  /** The value after expansion, as text. */
  expanded: string;
  /** The variables it read, with their values. */
  variables: Array<{ name: string; value: string }>;
  /** Whether the value was typed from its text (a whole-value reference read as a number or boolean). */
  typed: boolean;
}

export interface EnvExpansion {
  /** The document with every reference replaced (the input is not changed). */
  value: unknown;
  expanded: ExpandedValue[];
  /** Unset variables and malformed references, each naming the key; empty when all is well. */
  problems: string[];
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const OPEN = '${env:';
const WHOLE_REFERENCE = /^\$\{env:[^}]*\}$/;

/** Expands every `${env:...}` reference in the values of a parsed YAML document. */
export function expandEnv(doc: unknown, env: Environment): EnvExpansion {
  const expanded: ExpandedValue[] = [];
  const problems: string[] = [];

  const walk = (node: unknown, path: string[]): unknown => {
    if (typeof node === 'string') return expandString(node, path.join('.'));
    if (Array.isArray(node)) return node.map((item, i) => walk(item, [...path, String(i)]));
    if (node !== null && typeof node === 'object') {
      return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, walk(v, [...path, k])]));
    }
    return node;
  };

  const expandString = (text: string, key: string): unknown => {
    if (!text.includes('$')) return text;
    const variables: Array<{ name: string; value: string }> = [];
    let out = '';
    let used = false;
    let i = 0;
    while (i < text.length) {
      const at = text.indexOf('$', i);
      if (at < 0) {
        out += text.slice(i);
        break;
      }
      out += text.slice(i, at);
      if (text.startsWith('$${', at)) {
        out += '${';
        i = at + 3;
      } else if (text.startsWith(OPEN, at)) {
        const end = text.indexOf('}', at);
        if (end < 0) {
          problems.push(`${keyName(key)}: "\${env:" has no closing "}"`);
          return text;
        }
        const body = text.slice(at + OPEN.length, end);
        const split = body.indexOf(':-');
        const name = split < 0 ? body : body.slice(0, split);
        const fallback = split < 0 ? undefined : body.slice(split + 2);
        if (!NAME.test(name)) {
          problems.push(`${keyName(key)}: "${name}" in \${env:${name}} is not an environment variable name`);
          return text;
        }
        const set = env[name];
        const value = set ?? fallback;
        if (value === undefined) {
          problems.push(`${keyName(key)}: environment variable ${name} is not set (\${env:${name}:-default} gives a default)`);
          return text;
        }
        if (set !== undefined) variables.push({ name, value: set });
        out += value;
        used = true;
        i = end + 1;
      } else {
        out += '$';
        i = at + 1;
      }
    }
    if (!used) return out;
    const typed = WHOLE_REFERENCE.test(text) ? typedScalar(out) : out;
    expanded.push({ key, original: text, expanded: out, variables, typed: typed !== out });
    return typed;
  };

  return { value: walk(doc, []), expanded, problems };
}

/** Text as YAML would read a plain scalar of numbers and booleans; other text stays text. */
function typedScalar(text: string): unknown {
  if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
  if (text === 'true') return true;
  if (text === 'false') return false;
  return text;
}

const keyName = (key: string) => key || '(top level)';

/** Texts shorter than this are not looked for in log lines (they would match unrelated text). */
export const MIN_HIDDEN_LENGTH = 4;

/**
 * What log lines must not show: each expanded value and each variable's value (longest first),
 * with the reference to show instead. Numbers and booleans are not looked for; text shorter than
 * MIN_HIDDEN_LENGTH neither.
 */
export function textsToHide(expanded: readonly ExpandedValue[]): Array<{ text: string; as: string }> {
  const hide = new Map<string, string>();
  for (const e of expanded) {
    if (!e.typed) hide.set(e.expanded, e.original);
    for (const v of e.variables) hide.set(v.value, `\${env:${v.name}}`);
  }
  return [...hide]
    .filter(([text]) => text.length >= MIN_HIDDEN_LENGTH)
    .sort(([a], [b]) => b.length - a.length)
    .map(([text, as]) => ({ text, as }));
}
