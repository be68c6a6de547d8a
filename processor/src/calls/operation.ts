import type { AttrReader } from '@conduct/proto';
import { K } from '../keys.js';
import * as sc from '../semconv.js';
import { ALL_LETTERS, clean, DB_KEYS, firstOf, GEN_AI_KEYS, HTTP_KEYS, HTTP_OR_URL_KEYS, MESSAGING_KEYS, RPC_KEYS, text } from './attrs.js';
import { joinedMemo, memoised } from './memo.js';

/** Longest operation kept. */
export const MAX_OPERATION_LENGTH = 200;
/** Placeholder that replaces id-like path segments and words. */
export const ID_PLACEHOLDER = '{id}';
/** Only this much of a query text is read to find its keyword and table. */
export const MAX_QUERY_SCAN_LENGTH = 2048;
/** Templated texts kept per memo; a full memo starts again empty. */
const TEMPLATE_MEMO_SIZE = 4_096;

/** How an operation was found; stronger sources win when two spans describe one call. */
export type OperationSource = 'route' | 'semantic' | 'path' | 'name';

export interface Operation {
  operation: string;
  source: OperationSource;
  /** `http`, `grpc`, `rpc`, `db`, `messaging`, `genai` or `internal`. */
  protocol: string;
}

const HTTP_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH', 'QUERY']);

/**
 * The operation a span describes, templated so that ids do not make new operations. `letters`
 * (`lettersOf(attrs)`, when known) lets it skip families of keys the span has none of.
 */
export function operationOf(name: string, attrs: AttrReader, letters = ALL_LETTERS): Operation {
  return operationInto({ operation: '', source: 'name', protocol: '' }, name, attrs, letters);
}

/**
 * operationOf written into `out` (returned): derivation describes every span through two scratch
 * operations it copies from, instead of a new object per span (and a third per stitched call).
 */
export function operationInto(out: Operation, name: string, attrs: AttrReader, letters = ALL_LETTERS): Operation {
  describe(out, name, attrs, letters);
  out.operation = clean(out.operation, MAX_OPERATION_LENGTH) || ID_PLACEHOLDER;
  return out;
}

/** Sets all three fields of `out`. */
function set(out: Operation, operation: string, source: OperationSource, protocol: string): Operation {
  out.operation = operation;
  out.source = source;
  out.protocol = protocol;
  return out;
}

// The texts of operations made of two parts (`GET /orders/{id}`, `SELECT orders`, `Cart/Get`),
// remembered per pair: the parts are the decoder's shared strings or memoised templates, so a
// hit is two lookups with their hashes computed, where a concatenation was a new string per call
// that the batch encoder then hashed again in its dictionary.
const spaced = joinedMemo(' ', TEMPLATE_MEMO_SIZE);
const slashed = joinedMemo('/', TEMPLATE_MEMO_SIZE);

/** The protocol the span's attributes speak. */
export function protocolOf(attrs: AttrReader, letters = ALL_LETTERS): string {
  if (letters & GEN_AI_KEYS && text(attrs, K.GEN_AI_OPERATION_NAME)) return 'genai';
  const rpc = letters & RPC_KEYS ? text(attrs, K.RPC_SYSTEM) : undefined;
  if (rpc) return rpc.toLowerCase() === 'grpc' ? 'grpc' : 'rpc';
  if (letters & DB_KEYS && firstOf(attrs, K.DB_SYSTEM_KEYS)) return 'db';
  if (letters & MESSAGING_KEYS && (text(attrs, K.MESSAGING_SYSTEM) || firstOf(attrs, K.MESSAGING_DESTINATION_KEYS))) return 'messaging';
  if (letters & HTTP_OR_URL_KEYS && (firstOf(attrs, K.HTTP_METHOD_KEYS) || firstOf(attrs, K.URL_FULL_KEYS))) return 'http';
  if (letters & RPC_KEYS && text(attrs, K.RPC_METHOD)) return 'rpc';
  return 'internal';
}

function describe(out: Operation, name: string, attrs: AttrReader, letters: number): Operation {
  const protocol = protocolOf(attrs, letters);
  if (letters & GEN_AI_KEYS && text(attrs, K.GEN_AI_OPERATION_NAME) === sc.GEN_AI_EXECUTE_TOOL) {
    const tool = text(attrs, K.GEN_AI_TOOL_NAME);
    return set(out, tool ? spaced(sc.GEN_AI_EXECUTE_TOOL, tool) : sc.GEN_AI_EXECUTE_TOOL, 'semantic', protocol);
  }

  const rawMethod = letters & HTTP_KEYS ? firstOf(attrs, K.HTTP_METHOD_KEYS, 32) : undefined;
  const method = rawMethod === undefined ? undefined : methodOf(rawMethod);
  const route = letters & HTTP_KEYS ? text(attrs, K.HTTP_ROUTE, MAX_OPERATION_LENGTH) : undefined;
  if (route) return set(out, method ? spaced(method, route) : route, 'route', protocol);

  const rpcMethod = letters & RPC_KEYS ? text(attrs, K.RPC_METHOD) : undefined;
  if (rpcMethod) {
    // Ids in RPC names are rare but do occur (a method or service named after a resource, a
    // URL-like target): the same shapes as in paths become `{id}`.
    const rpcService = text(attrs, K.RPC_SERVICE);
    const method = templateRpcName(rpcMethod);
    return set(out, rpcService ? slashed(templateRpcName(rpcService), method) : method, 'semantic', protocol);
  }

  if (letters & DB_KEYS) {
    const db = dbOperation(attrs);
    if (db) return set(out, db, 'semantic', protocol);
  }

  const destination = letters & MESSAGING_KEYS ? firstOf(attrs, K.MESSAGING_DESTINATION_KEYS) : undefined;
  if (destination) {
    const operation = firstOf(attrs, K.MESSAGING_OPERATION_KEYS, 64);
    const dest = templateWords(destination);
    return set(out, operation ? spaced(operation, dest) : dest, 'semantic', protocol);
  }

  if (method) {
    const path = firstOf(attrs, K.URL_PATH_KEYS, 2048) ?? pathOfUrl(firstOf(attrs, K.URL_FULL_KEYS, 2048));
    if (path !== undefined) return set(out, spaced(method, templatePath(path)), 'path', protocol);
  }

  if (protocol === 'db') {
    // Some instrumentations name a database span after its statement: its keyword and table, or
    // the statement with its literals replaced, never the literals.
    const parsed = isStatement(name) ? parseQuery(name) : undefined;
    if (parsed) return set(out, parsed.table ? `${parsed.keyword} ${templateTable(parsed.table)}` : parsed.keyword, 'name', protocol);
  }
  return set(out, templateWords(protocol === 'db' ? templateQuery(name) : name), 'name', protocol);
}

/** An HTTP method as operations name it: upper case when known, else `_OTHER`. */
function methodOf(raw: string): string {
  // The decoder hands out one string per method text: its canonical form is found by a lookup
  // (hash computed) instead of two upper-case copies per span.
  let method = METHOD_OF.get(raw);
  if (method === undefined) {
    const upper = raw.toUpperCase();
    method = HTTP_METHODS.has(upper) ? upper : '_OTHER';
    if (METHOD_OF.size >= TEMPLATE_MEMO_SIZE) METHOD_OF.clear();
    METHOD_OF.set(raw, method);
  }
  return method;
}

const METHOD_OF = new Map<string, string>();

/**
 * A database call's operation from its semantic attributes: `db.operation.name` with the
 * collection, else `db.query.summary`, else the keyword and table of `db.query.text` /
 * `db.statement`. Tables and collections named after a date or an id (`events_20261206`,
 * `tenant_42.orders`) keep their name with that part templated.
 */
function dbOperation(attrs: AttrReader): string | undefined {
  const operation = firstOf(attrs, K.DB_OPERATION_KEYS, 64);
  const collection = firstOf(attrs, K.DB_COLLECTION_KEYS);
  const table = collection === undefined ? undefined : templateTable(collection);
  if (operation) return table ? spaced(operation, table) : operation;
  const summary = text(attrs, K.DB_QUERY_SUMMARY, MAX_OPERATION_LENGTH);
  if (summary) return templateWords(templateQuery(summary));
  const query = firstOf(attrs, K.DB_QUERY_KEYS, MAX_QUERY_SCAN_LENGTH);
  if (!query) return undefined;
  const parsed = parseQuery(query);
  if (!parsed) return undefined;
  const target = table ?? (parsed.table ? templateTable(parsed.table) : undefined);
  return target ? `${parsed.keyword} ${target}` : parsed.keyword;
}

/**
 * An RPC service or method name with its ids templated, `/`-segment by segment; a dotted segment
 * (`shop.catalog.v1.Catalog`, a package-qualified name) is one id only when it is an e-mail
 * address or a release version, else each dotted part is looked at on its own.
 */
export const templateRpcName = memoised(templateRpcNameOf, TEMPLATE_MEMO_SIZE);

// Remembered per text like the other templates: every call of a service names the same few
// methods, and splitting and testing each part was 8% of deriving 40-span traces (2026-12-06).
function templateRpcNameOf(value: string): string {
  return value
    .split('/')
    .map((seg) => {
      if (!seg.includes('.')) return isIdLike(seg) ? ID_PLACEHOLDER : seg;
      if (EMAIL.test(seg) || VERSION.test(seg)) return ID_PLACEHOLDER;
      return seg
        .split('.')
        .map((part) => (isIdLike(part) ? ID_PLACEHOLDER : part))
        .join('.');
    })
    .join('/');
}

/** SQL statement keywords a span name may start with. */
const STATEMENT = /^\s*(?:\/\*[\s\S]*?\*\/\s*)*(?:SELECT|INSERT|UPDATE|DELETE|REPLACE|MERGE|UPSERT|WITH|CALL|EXEC|EXECUTE)\b/i;

function isStatement(text: string): boolean {
  return STATEMENT.test(text);
}

/**
 * A table or collection name with the parts that are ids templated: each dotted part, and in it
 * each `_`/`-`-separated word, that `isIdLike` takes for an id becomes `{id}`
 * (`events_20261206` -> `events_{id}`, `tenant_42.orders` -> `tenant_{id}.orders`).
 */
export const templateTable = memoised(templateTableOf, TEMPLATE_MEMO_SIZE);

// Remembered per name like the other templates: every call to a table names the same few, and
// splitting and testing each part was ~2% of the pipeline thread with 4-span traces (2026-12-06).
function templateTableOf(name: string): string {
  return name
    .split('.')
    .map((part) => (isIdLike(part) && !/[_-]/.test(part) ? ID_PLACEHOLDER : part.split(/([_-])/).map((w) => (isIdLike(w) ? ID_PLACEHOLDER : w)).join('')))
    .join('.');
}

/**
 * A query text with its literals replaced by `?`: quoted strings ('...', with '' and \' inside;
 * E'...' and N'...'), dollar-quoted strings, hex (`0x1f`, `X'1f'`), numbers not part of a name, and
 * IN lists of them (`IN (?, ?, ?)` -> `IN (?)`). Identifiers in double quotes or backticks stay.
 * What a serious tool does before it groups queries (pg_stat_statements, slow-log digests).
 */
export const templateQuery = memoised(templateQueryOf, TEMPLATE_MEMO_SIZE);

function templateQueryOf(query: string): string {
  return query
    .slice(0, MAX_QUERY_SCAN_LENGTH)
    .replace(/\$([A-Za-z_]\w*)?\$[\s\S]*?\$\1\$/g, '?')
    .replace(/(?:\b[EeNnXxBb])?'(?:[^'\\]|''|\\.)*'/g, '?')
    .replace(/\b0x[0-9a-f]+\b/gi, '?')
    .replace(/(^|[^\w$."`])[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?\b/gi, '$1?')
    .replace(/\bIN\s*\(\s*\?(?:\s*,\s*\?)*\s*\)/gi, 'IN (?)');
}

const QUERY_KEYWORD = /^\s*(?:\/\*[\s\S]*?\*\/\s*)*([A-Za-z]+)/;
const IDENT = String.raw`([\`"\[]?[A-Za-z_][\w$]*[\`"\]]?(?:\.[\`"\[]?[A-Za-z_][\w$]*[\`"\]]?)*)`;
const TABLE_AFTER: Record<string, RegExp> = {
  SELECT: new RegExp(String.raw`\bFROM\s+` + IDENT, 'i'),
  DELETE: new RegExp(String.raw`\bFROM\s+` + IDENT, 'i'),
  INSERT: new RegExp(String.raw`\bINTO\s+` + IDENT, 'i'),
  REPLACE: new RegExp(String.raw`\bINTO\s+` + IDENT, 'i'),
  MERGE: new RegExp(String.raw`\bINTO\s+` + IDENT, 'i'),
  UPDATE: new RegExp(String.raw`^\s*UPDATE\s+` + IDENT, 'i'),
};

/** The first keyword of a query and, for the common statements, the table it acts on. */
export function parseQuery(query: string): { keyword: string; table?: string } | undefined {
  const head = query.slice(0, MAX_QUERY_SCAN_LENGTH);
  const m = QUERY_KEYWORD.exec(head);
  if (!m) return undefined;
  const keyword = m[1]!.toUpperCase().slice(0, 32);
  const tableRe = TABLE_AFTER[keyword];
  const t = tableRe?.exec(head.slice(m.index + m[0].length - m[1]!.length));
  const table = t?.[1]?.replace(/[`"[\]]/g, '').slice(0, 128);
  return table ? { keyword, table } : { keyword };
}

/**
 * The path of an absolute URL, without query or fragment: what
 * `/^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*([^?#]*)/` captures (`/` when empty), found by hand: the
 * expression's match arrays were 7% of the bytes derive allocates per span (4-span traces).
 */
export function pathOfUrl(url: string | undefined): string | undefined {
  if (!url || !isLetter(url.charCodeAt(0))) return undefined;
  let i = 1;
  while (i < url.length && isSchemeChar(url.charCodeAt(i))) i++;
  if (url.charCodeAt(i) !== COLON || url.charCodeAt(i + 1) !== SLASH || url.charCodeAt(i + 2) !== SLASH) return undefined;
  i += 3;
  while (i < url.length && !isOneOf(url.charCodeAt(i), SLASH, QUESTION, HASH)) i++;
  const start = i;
  while (i < url.length && !isOneOf(url.charCodeAt(i), QUESTION, QUESTION, HASH)) i++;
  return i > start ? url.slice(start, i) : '/';
}

const COLON = 0x3a;
const SLASH = 0x2f;
const QUESTION = 0x3f;
const HASH = 0x23;

function isLetter(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

/** `[A-Za-z0-9+.-]` */
function isSchemeChar(c: number): boolean {
  return isLetter(c) || (c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2e || c === 0x2d;
}

function isOneOf(c: number, a: number, b: number, d: number): boolean {
  return c === a || c === b || c === d;
}


/** A URL path with its query stripped and id-like segments replaced by `{id}`. */
export const templatePath = memoised(templatePathOf, TEMPLATE_MEMO_SIZE);

function templatePathOf(path: string): string {
  const cut = path.search(/[?#]/);
  const bare = (cut >= 0 ? path.slice(0, cut) : path).slice(0, 2048);
  return bare
    .split('/')
    .map((seg) => (isIdLike(seg) ? ID_PLACEHOLDER : seg))
    .join('/');
}

/** A span name or destination with id-like words and path segments replaced by `{id}`. */
export const templateWords = memoised(templateWordsOf, TEMPLATE_MEMO_SIZE);

function templateWordsOf(value: string): string {
  return value
    .slice(0, 2048)
    .split(/(\s+)/)
    .map((word) => (word.includes('/') ? templatePath(word) : isIdLike(word) ? ID_PLACEHOLDER : word))
    .join('');
}

const NUMBER = /^[-+]?\d+(?:[.,]\d+)*$/;
const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;
const HEX = /^(?:0x)?[0-9a-f]{8,}$/i;
const EMAIL = /^[^@\s/]+@[^@\s/]+\.[^@\s/]+$/;
const TOKEN_CHARS = /^[A-Za-z0-9_\-+=.~%]+$/;
const DIGIT_RUN = /\d{4,}/;
/** Content digests as registries and stores name them: `sha256:<hex>`, `sha512:...`, `md5:...`. */
const DIGEST = /^(?:sha(?:1|224|256|384|512)|md5|blake2b|blake3)[:=-][0-9a-f]{16,}$/i;
/** Release versions: `1.2.3`, `v1.2.3`, `1.2.3-rc.1`, `v2.0.0+build.5` (not `v2` or `v1.0`, API versions). */
const VERSION = /^v?\d+\.\d+\.\d+(?:\.\d+)*(?:[-+][0-9A-Za-z.-]+)?$/;
/** ULIDs: 26 characters of Crockford base32, the first a timestamp digit 0-7. */
const ULID = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/i;
/** Long base64 / base64url tokens (JWT parts, opaque cursors): 32+ characters from the alphabet, mixed case. */
const LONG_TOKEN = /^[A-Za-z0-9_\-+/]{32,}={0,2}$/;

/**
 * True for a path segment or word that names one thing rather than a kind of thing: numbers,
 * UUIDs (any case), hex of 8+ characters, content digests (`sha256:<hex>`), release versions
 * (`v1.2.3`; API versions such as `v2` or `v1.0` stay), ULIDs, e-mail addresses, runs of 4+ digits (dates, timestamps,
 * prefixed ids such as `ord_12345`), random-looking tokens of 16+ characters (3+ digits, or upper,
 * lower and digits mixed) and base64/base64url tokens of 32+ characters in mixed case.
 */
export function isIdLike(segment: string): boolean {
  if (segment === '') return false;
  let s = segment;
  if (s.includes('%')) {
    try {
      s = decodeURIComponent(s);
    } catch {
      // keep as is
    }
  }
  if (NUMBER.test(s) || UUID.test(s) || HEX.test(s) || EMAIL.test(s) || DIGIT_RUN.test(s)) return true;
  if (DIGEST.test(s) || VERSION.test(s) || (s.length === 26 && ULID.test(s) && /\d/.test(s))) return true;
  // A 32+ character token of one word in mixed case with a digit, or with `-`/`_` inside it, is not a name.
  if (LONG_TOKEN.test(s) && /[a-z]/.test(s) && /[A-Z]/.test(s) && (/\d/.test(s) || /[-_]/.test(s.slice(1, -1)))) return true;
  if (s.length >= 16 && TOKEN_CHARS.test(s)) {
    const digits = s.replace(/\D/g, '').length;
    if (digits >= 3) return true;
    if (digits > 0 && /[a-z]/.test(s) && /[A-Z]/.test(s)) return true;
  }
  return false;
}
