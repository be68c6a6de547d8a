/**
 * User agent families and the software that marks a person at a workstation. A family drops
 * versions, so upgrades of the same client do not look like a new source.
 */

/** Longest user agent text read; the rest is ignored. */
export const MAX_USER_AGENT_LENGTH = 512;

const BROWSER = /^Mozilla\/\d/i;
const NOT_A_PERSON = /bot|crawler|spider|headless|curl|wget|python|java|go-http|okhttp/i;
const CLOUD_CLI = /\b(aws-cli|azure-cli|azurecli|gcloud|google-cloud-sdk|oci-cli|doctl|aws-shell)\b/i;
const DESKTOP_OS = /os\/(macos|darwin|windows|win32)|\bDarwin\/|\bWindows\b|Windows NT|Mac OS X|\bmacOS\b|\bwin32\b/i;

function clean(ua: string): string {
  return ua.slice(0, MAX_USER_AGENT_LENGTH).trim().replace(/^\[+/, '').replace(/\]+$/, '').trim();
}

/** User agents classified so far (a handful per identity); cleared whenever it holds this many. */
export const MAX_CACHED_USER_AGENTS = 4_096;
const families = new Map<string, string>();
const humans = new Map<string, string | undefined>();

function remember<T>(cache: Map<string, T>, key: string, value: T): T {
  if (cache.size >= MAX_CACHED_USER_AGENTS) cache.clear();
  cache.set(key, value);
  return value;
}

/** `browser`, or the first product token lower-cased without its version (`aws-cli`, `boto3`, `curl`). */
export function userAgentFamily(userAgent: string): string {
  const known = families.get(userAgent);
  return known ?? remember(families, userAgent, familyOf(userAgent));
}

function familyOf(userAgent: string): string {
  const ua = clean(userAgent);
  if (ua === '') return 'unknown';
  if (BROWSER.test(ua) && !NOT_A_PERSON.test(ua)) return 'browser';
  const token = /^([A-Za-z][A-Za-z0-9_.+-]*)/.exec(ua)?.[1] ?? 'other';
  return token.toLowerCase().slice(0, 64);
}

/**
 * Why this user agent marks a person at a workstation (a browser, or a cloud CLI on a desktop
 * OS), or undefined when it does not.
 */
export function humanSoftware(userAgent: string): string | undefined {
  if (humans.has(userAgent)) return humans.get(userAgent);
  return remember(humans, userAgent, humanSoftwareOf(userAgent));
}

function humanSoftwareOf(userAgent: string): string | undefined {
  const ua = clean(userAgent);
  if (BROWSER.test(ua) && !NOT_A_PERSON.test(ua)) return 'a web browser';
  const cli = CLOUD_CLI.exec(ua)?.[1];
  if (cli) {
    const os = DESKTOP_OS.exec(ua)?.[0];
    if (os) return `a cloud CLI (${cli.toLowerCase()}) on a desktop operating system (${os})`;
  }
  return undefined;
}

/** Identity kinds that are never a person. */
const NON_HUMAN_KINDS = new Set(['agent', 'certificate', 'workload']);
/** Identity ids that name a role, a service account or a workload even under a person-like kind. */
const NON_HUMAN_ID = [
  /:assumed-role\/(?!AWSReservedSSO_)/i,
  /:role\//i,
  /serviceaccount/i,
  /\.iam\.gserviceaccount\.com$/i,
  /^spiffe:\/\//i,
  /^svc:/i,
  /^agent:/i,
  /\/sa\//i,
];

/** Identity ids tested against NON_HUMAN_ID so far; cleared whenever it holds MAX_CACHED_USER_AGENTS. */
const nonHumanIds = new Map<string, boolean>();

/** True when the identity is a machine identity (so human software driving it is misuse). */
export function isNonHumanIdentity(identity: string, kind: string): boolean {
  if (NON_HUMAN_KINDS.has(kind)) return true;
  // `credential-reuse` asks at every chain: the ids' patterns are tested once per identity.
  const known = nonHumanIds.get(identity);
  return known ?? remember(nonHumanIds, identity, NON_HUMAN_ID.some((re) => re.test(identity)));
}
