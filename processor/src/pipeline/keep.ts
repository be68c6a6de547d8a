import type { AttributeKeep } from '@conduct/proto';
import type { IdentityRule } from '../model.js';
import { PRESENCE_PREFIXES, READ_ATTRIBUTE_KEYS } from '../semconv.js';

/**
 * The attributes the pipeline reads: the semantic-convention keys of `semconv.ts` and every key
 * the identity rules name (attributes and display-name attributes). Receivers decode only these.
 */
export function attributeKeepFor(rules: readonly IdentityRule[]): AttributeKeep {
  const keys = new Set<string>(READ_ATTRIBUTE_KEYS);
  for (const rule of rules) {
    for (const key of Array.isArray(rule.attribute) ? rule.attribute : [rule.attribute]) keys.add(key);
    if (rule.displayNameAttribute) keys.add(rule.displayNameAttribute);
  }
  return { keys, presencePrefixes: PRESENCE_PREFIXES };
}
