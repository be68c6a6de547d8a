import type { Call } from '@conduct/processor';
import type { PolicyConfig } from './settings.js';

/**
 * Identity context from the `policies` config: glob matching, the policy of an identity and
 * whether a call is sensitive.
 */

const globCache = new Map<string, RegExp>();
/** Compiled globs kept; the cache is cleared when it grows past this. */
export const MAX_CACHED_GLOBS = 1_000;

/** `*` matches any run of characters, `?` one character; everything else literally; whole string. */
export function globToRegExp(glob: string): RegExp {
  let re = globCache.get(glob);
  if (re) return re;
  let src = '';
  for (const ch of glob) {
    if (ch === '*') src += '.*';
    else if (ch === '?') src += '.';
    else src += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  re = new RegExp(`^${src}$`, 's');
  if (globCache.size >= MAX_CACHED_GLOBS) globCache.clear();
  globCache.set(glob, re);
  return re;
}

export function matchesAny(value: string, globs: readonly string[] | undefined): boolean {
  return (globs ?? []).some((g) => globToRegExp(g).test(value));
}

/** The first policy whose `match` glob matches the identity id. */
export function policyFor(policies: readonly PolicyConfig[], identity: string): PolicyConfig | undefined {
  return policies.find((p) => globToRegExp(p.match).test(identity));
}

/** Built-in sensitive operation patterns: IAM, secrets, keys and credentials. */
export const BUILTIN_SENSITIVE_OPERATIONS: readonly RegExp[] = [
  /\biam\b|iam[:.]|setiampolicy|getiampolicy|testiampermissions/i,
  /secret|vault/i,
  /\bkms\b|kms[:.]|decrypt/i,
  /assumerole|getsessiontoken|getfederationtoken|createaccesskey|updateaccesskey/i,
  /credential|password|passwd/i,
  /(list|get)_?(users|roles|groups|policies|accountauthorizationdetails)|attach.*policy|put.*policy|passrole|createuser|createrole/i,
];
/** Peers whose every operation is sensitive. */
export const BUILTIN_SENSITIVE_PEERS: readonly RegExp[] = [/(^|[./:])(iam|sts|secretsmanager|kms|vault)([./:]|$)/i];

const LIST_LIKE = /^(list|describe|get.*s$|search|scan)/i;

/** Why a call is sensitive (policy `sensitiveOperations`, built-in patterns, cross-account listing). */
export function sensitiveReason(call: Call, policy: PolicyConfig | undefined): string | undefined {
  if (matchesAny(call.operation, policy?.sensitiveOperations)) return 'listed in its sensitiveOperations';
  if (BUILTIN_SENSITIVE_OPERATIONS.some((re) => re.test(call.operation))) return 'an identity, secret or key operation';
  if (BUILTIN_SENSITIVE_PEERS.some((re) => re.test(call.peer))) return 'a call to an identity or secrets service';
  const last = call.operation.split(/[\s/]/).filter(Boolean).pop() ?? '';
  if (call.account && call.source?.account && call.account !== call.source.account && LIST_LIKE.test(last)) {
    return 'a listing in another account';
  }
  return undefined;
}
