import { isIPv4, isIPv6 } from 'node:net';

/** DNS suffixes that name hosts inside a private network. */
export const INTERNAL_DNS_SUFFIXES = ['.local', '.internal', '.svc', '.cluster.local', '.localhost', '.localdomain', '.lan', '.home.arpa', '.intranet', '.corp'];

/** Strips brackets and a trailing `:port` from a host as found in `server.address:port` or a URL. */
export function bareHost(hostPort: string): string {
  let host = hostPort.trim().toLowerCase();
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end > 0 ? host.slice(1, end) : host.slice(1);
  }
  // One colon: host:port. Several colons: a bare IPv6 address.
  const colon = host.indexOf(':');
  if (colon >= 0 && colon === host.lastIndexOf(':')) host = host.slice(0, colon);
  return host.endsWith('.') ? host.slice(0, -1) : host;
}

/**
 * True when the host is inside private address space: private, loopback, link-local, shared or
 * unspecified IPv4/IPv6 addresses, and DNS names that are obviously internal (no dot, `localhost`,
 * or one of {@link INTERNAL_DNS_SUFFIXES}).
 */
export function isPrivateHost(hostPort: string): boolean {
  const host = bareHost(hostPort);
  if (host === '') return true;
  if (isIPv4(host)) return isPrivateIPv4(host);
  if (isIPv6(host)) return isPrivateIPv6(host);
  if (host === 'localhost' || !host.includes('.')) return true;
  return INTERNAL_DNS_SUFFIXES.some((s) => host.endsWith(s));
}

function isPrivateIPv4(ip: string): boolean {
  const [a = 0, b = 0] = ip.split('.').map(Number);
  return (
    a === 10 ||
    a === 127 ||
    a === 0 ||
    (a === 172 && b >= 16 && b <= 31) ||
    (a === 192 && b === 168) ||
    (a === 169 && b === 254) ||
    (a === 100 && b >= 64 && b <= 127)
  );
}

function isPrivateIPv6(ip: string): boolean {
  const groups = expandIPv6(ip);
  if (!groups) return true;
  if (groups.every((g) => g === 0)) return true; // ::
  if (groups.slice(0, 7).every((g) => g === 0) && groups[7] === 1) return true; // ::1
  const first = groups[0]!;
  if ((first & 0xfe00) === 0xfc00) return true; // fc00::/7 unique local
  if ((first & 0xffc0) === 0xfe80) return true; // fe80::/10 link-local
  // IPv4-mapped ::ffff:a.b.c.d
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    const v4 = `${groups[6]! >> 8}.${groups[6]! & 255}.${groups[7]! >> 8}.${groups[7]! & 255}`;
    return isPrivateIPv4(v4);
  }
  return false;
}

/** The eight 16-bit groups of an IPv6 address (an embedded IPv4 tail is converted), or undefined. */
export function expandIPv6(ip: string): number[] | undefined {
  let text = ip.toLowerCase();
  const zone = text.indexOf('%');
  if (zone >= 0) text = text.slice(0, zone);
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = text.slice(0, v4.index) + ((a << 8) | b).toString(16) + ':' + ((c << 8) | d).toString(16);
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 0) return undefined;
  const groups = [...head, ...new Array<string>(missing).fill('0'), ...tail].map((g) => parseInt(g, 16));
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : undefined;
}

/** The network segment of an address: `a.b.c.0/24` for IPv4, `x:y:z::/48` for IPv6, else undefined. */
export function networkOf(address: string): string | undefined {
  const host = bareHost(address);
  if (isIPv4(host)) {
    const [a, b, c] = host.split('.').map(Number);
    return `${a}.${b}.${c}.0/24`;
  }
  if (isIPv6(host)) {
    const groups = expandIPv6(host);
    if (!groups) return undefined;
    if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
      return networkOf(`${groups[6]! >> 8}.${groups[6]! & 255}.${groups[7]! >> 8}.${groups[7]! & 255}`);
    }
    return `${groups.slice(0, 3).map((g) => g.toString(16)).join(':')}::/48`;
  }
  return undefined;
}
