import { attributeKeyId, type AttrReader, type SpanView } from '@conduct/proto';
import { K } from '../keys.js';
import type { IdentityKind, IdentityRule } from '../model.js';
import { clean } from '../calls/attrs.js';
import { itemsOfSpans, TraceTable } from '../calls/trace-table.js';

/** Longest identity id kept; longer ids are cut. */
export const MAX_IDENTITY_LENGTH = 256;
/** Longest display name kept. */
export const MAX_DISPLAY_NAME_LENGTH = 256;
/** Attribute values are cut to this before a rule's regular expression runs on them. */
export const MAX_RULE_INPUT_LENGTH = 1024;
/** Service name used when a resource has no `service.name`. */
export const UNKNOWN_SERVICE = 'unknown_service';
/** Prefix of a certificate identity taken from the subject's CN. */
export const CERTIFICATE_CN_PREFIX = 'cert:';
/** Prefix of the fallback identity when no rule matches at all. */
export const FALLBACK_PREFIX = 'svc:';

/** Default identity rules, in order (processor/README.md, "Identity"). Keep equal to backend/src/config/schema.ts. */
export const DEFAULT_IDENTITY_RULES: IdentityRule[] = [
  { from: 'span', attribute: 'gen_ai.agent.id', kind: 'agent', prefix: 'agent:', displayNameAttribute: 'gen_ai.agent.name' },
  { from: 'span', attribute: 'enduser.id', kind: 'principal' },
  { from: 'span', attribute: 'user.id', kind: 'principal' },
  { from: 'span', attribute: 'tls.client.subject', kind: 'certificate' },
  { from: 'resource', attribute: ['service.namespace', 'service.name'], kind: 'workload', prefix: 'svc:' },
];

/** An identity as resolved for one span. */
export interface ResolvedIdentity {
  id: string;
  kind: IdentityKind;
  displayName?: string;
}

/** A span together with the resource it was sent under. */
export interface TraceSpan {
  span: SpanView;
  /** The resource's attributes: one reader per resource, shared by its spans. */
  resource: AttrReader;
}

export interface IdentityResolver {
  /** The first span-level rule that matches the span's own attributes, if any. */
  spanIdentity(span: SpanView): ResolvedIdentity | undefined;
  /** As spanIdentity, from the span's attributes. */
  attrsIdentity(attrs: AttrReader): ResolvedIdentity | undefined;
  /** The identity of the workload itself: the first resource rule that matches (never undefined). */
  resourceIdentity(resource: AttrReader): ResolvedIdentity;
  /**
   * The acting identity of every span of one trace, keyed by span id: the span's own span-level
   * identity, else its parent's acting identity when the parent is in the same service (up the
   * same-service ancestry), else the resource's identity. Independent of the order of `spans`.
   */
  resolveTrace(spans: readonly TraceSpan[]): Map<string, ResolvedIdentity>;
  /**
   * resolveTrace for a loaded trace (the hot path): fills `table.service` with each span's caller
   * service and `acting` (by span index) with each span's acting identity.
   */
  resolveTable(table: TraceTable, acting: (ResolvedIdentity | undefined)[]): void;
}

interface CompiledRule {
  rule: IdentityRule;
  /** Ids of the rule's attribute keys. */
  keys: number[];
  /** Id of its display-name attribute, -1 for none. */
  nameKey: number;
  regex?: RegExp;
  /** Identity (null: no match) by rule input and then display name ('' for none); see {@link apply}. */
  memo: Map<string, Map<string, ResolvedIdentity | null>>;
  /** Outcomes in `memo`, over both levels. */
  memoSize: number;
}

/** Outcomes remembered per rule; a full memo starts again empty. */
const RULE_MEMO_SIZE = 4_096;

const serviceKeys = new WeakMap<AttrReader, string>();

/** The caller service of a resource: `service.namespace/service.name`, or just `service.name`. */
export function serviceOf(resource: AttrReader): string {
  let key = serviceKeys.get(resource);
  if (key === undefined) {
    const name = readValue(resource.get(K.SERVICE_NAME)) ?? UNKNOWN_SERVICE;
    const ns = readValue(resource.get(K.SERVICE_NAMESPACE));
    key = clean(ns === undefined ? name : `${ns}/${name}`, MAX_IDENTITY_LENGTH);
    serviceKeys.set(resource, key);
  }
  return key;
}

/**
 * Builds a resolver for ordered rules. Span-level rules are tried first, in their order; then
 * inheritance from the same-service parent; then resource rules, in their order. Throws when a
 * rule's pattern is not a valid regular expression (config validation normally catches it first).
 */
export function createIdentityResolver(rules: readonly IdentityRule[] = DEFAULT_IDENTITY_RULES): IdentityResolver {
  const compile = (rule: IdentityRule, index: number): CompiledRule => {
    const keys = (Array.isArray(rule.attribute) ? [...rule.attribute] : [rule.attribute as string]).map(attributeKeyId);
    let regex: RegExp | undefined;
    if (rule.pattern !== undefined) {
      try {
        regex = new RegExp(rule.pattern);
      } catch (err) {
        throw new Error(`identity.rules[${index}].pattern: ${(err as Error).message}`);
      }
    }
    const nameKey = rule.displayNameAttribute ? attributeKeyId(rule.displayNameAttribute) : -1;
    return { rule, keys, nameKey, regex, memo: new Map(), memoSize: 0 };
  };
  const compiled = rules.map(compile);
  const spanRules = compiled.filter((c) => c.rule.from === 'span');
  const resourceRules = compiled.filter((c) => c.rule.from === 'resource');
  const resourceCache = new WeakMap<AttrReader, ResolvedIdentity>();

  // Indexed loops here and in `apply` (per span and per call): an array's for..of left iterator
  // results among the pipeline thread's allocations (gc-serve.mjs --alloc, bench/README.md).
  const attrsIdentity = (attrs: AttrReader): ResolvedIdentity | undefined => {
    for (let i = 0; i < spanRules.length; i++) {
      const found = apply(spanRules[i]!, attrs);
      if (found) return found;
    }
    return undefined;
  };

  const resourceIdentity = (resource: AttrReader): ResolvedIdentity => {
    let found = resourceCache.get(resource);
    if (found) return found;
    for (let i = 0; i < resourceRules.length && !found; i++) found = apply(resourceRules[i]!, resource);
    found ??= { id: bound(FALLBACK_PREFIX + serviceOf(resource)), kind: 'workload' };
    resourceCache.set(resource, found);
    return found;
  };

  // One path and one walk mark per span for every walk of the trace: most walks end at their
  // first span, so a span joins them only when the walk moves on to its parent.
  const path: number[] = [];
  const marks: number[] = [];
  const resolveTable = (t: TraceTable, acting: (ResolvedIdentity | undefined)[]): void => {
    const n = t.n;
    const service = t.service;
    let last: AttrReader | undefined;
    for (let k = 0; k < n; k++) {
      const resource = t.resource[k]!;
      if (resource !== last) service[k] = serviceOf((last = resource));
      else service[k] = service[k - 1]!;
      marks[k] = -1;
    }
    // Not emptied by length: a reused array would free and grow its storage for every trace.
    for (let k = 0; k < n; k++) acting[k] = undefined;
    for (let start = 0; start < n; start++) {
      if (acting[start] !== undefined) continue;
      // Walk up the same-service ancestry until a span with a known or span-level identity.
      // Written by index with its own depth: emptied by length, it freed and grew its storage for
      // every walk (78 bytes per span allocated with 4-span traces, 2026-12-06).
      let depth = 0;
      let current = start;
      let found: ResolvedIdentity | undefined;
      for (;;) {
        const known = acting[current];
        if (known !== undefined) {
          found = known;
          break;
        }
        const own = attrsIdentity(t.attrs(current));
        if (own) {
          acting[current] = found = own;
          break;
        }
        const parent = t.parent[current]!;
        if (parent < 0 || parent === current || marks[parent] === start || service[parent] !== service[current]) {
          acting[current] = found = resourceIdentity(t.resource[current]!);
          break;
        }
        marks[current] = start;
        path[depth++] = current;
        current = parent;
      }
      for (let d = 0; d < depth; d++) acting[path[d]!] = found;
    }
  };

  const resolveTrace = (spans: readonly TraceSpan[]): Map<string, ResolvedIdentity> => {
    const { traceId, items } = itemsOfSpans(spans);
    const t = new TraceTable().load(traceId, items);
    const acting: (ResolvedIdentity | undefined)[] = [];
    resolveTable(t, acting);
    const byId = new Map<string, ResolvedIdentity>();
    for (let k = 0; k < t.n; k++) byId.set(t.spanIdOf(k), acting[k]!);
    return byId;
  };

  return { spanIdentity: (span) => attrsIdentity(span.attributes), attrsIdentity, resourceIdentity, resolveTrace, resolveTable };
}

/**
 * The identity a rule finds in `attrs`. Every span of an identity carries the same few values, so
 * the outcome is remembered per input: one identity object (and one id string) per identity
 * instead of a fresh prefix concatenation, regular expression run and object per span, which also
 * lets every map downstream find the id's hash computed. Bounded like the other memos.
 */
function apply(c: CompiledRule, attrs: AttrReader): ResolvedIdentity | undefined {
  const last = readValue(attrs.get(c.keys[c.keys.length - 1]!));
  if (last === undefined) return undefined;
  let value = last;
  if (c.keys.length > 1) {
    const parts: string[] = [];
    for (let i = 0; i < c.keys.length; i++) {
      const v = readValue(attrs.get(c.keys[i]!));
      if (v !== undefined) parts.push(v);
    }
    value = parts.join('/');
  }
  const name = c.nameKey >= 0 ? (readValue(attrs.get(c.nameKey)) ?? '') : '';
  let byName = c.memo.get(value);
  const known = byName?.get(name);
  if (known !== undefined) return known ?? undefined;
  const resolved = resolve(c, value, name);
  // Bounded over both levels: senders choose the ids and the names.
  if (c.memoSize >= RULE_MEMO_SIZE) {
    c.memo.clear();
    c.memoSize = 0;
    byName = undefined;
  }
  if (!byName) c.memo.set(value, (byName = new Map()));
  byName.set(name, resolved ?? null);
  c.memoSize++;
  return resolved;
}

function resolve(c: CompiledRule, input: string, name: string): ResolvedIdentity | undefined {
  const value = input.slice(0, MAX_RULE_INPUT_LENGTH);
  let id: string | undefined;
  if (c.regex) {
    const m = c.regex.exec(value);
    if (!m) return undefined;
    id = m.slice(1).find((g) => g !== undefined && g !== '') ?? m[0];
    if (id === '') return undefined;
    id = (c.rule.prefix ?? '') + id;
  } else if (c.rule.kind === 'certificate') {
    id = certificateId(value, c.rule.prefix);
  } else {
    id = (c.rule.prefix ?? '') + value;
  }
  const resolved: ResolvedIdentity = { id: bound(id), kind: c.rule.kind };
  if (name !== '') resolved.displayName = clean(name, MAX_DISPLAY_NAME_LENGTH);
  return resolved;
}

const SPIFFE_URI = /spiffe:\/\/[^\s,;"'<>]+/i;
const COMMON_NAME = /(?:^|[,/;+])\s*CN\s*=\s*((?:\\.|[^,/;+\\])+)/i;

/**
 * The identity named by a client certificate subject: a SPIFFE id in it wins (kept as is, after an
 * optional prefix); else the CN, prefixed with `cert:` unless the rule names another prefix; else
 * the whole subject.
 */
export function certificateId(subject: string, prefix?: string): string {
  const spiffe = SPIFFE_URI.exec(subject);
  if (spiffe) return (prefix ?? '') + spiffe[0];
  const cn = COMMON_NAME.exec(subject);
  const name = cn?.[1]?.trim().replace(/\\(.)/g, '$1');
  return (prefix ?? CERTIFICATE_CN_PREFIX) + (name || subject);
}

function readValue(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  const s = clean(String(v), MAX_RULE_INPUT_LENGTH);
  return s === '' ? undefined : s;
}

function bound(id: string): string {
  return clean(id, MAX_IDENTITY_LENGTH);
}
