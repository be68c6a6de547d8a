import { ReceiverConfigError } from './config.js';

/** A listen address split from `HOST:PORT`. */
export interface ListenAddress {
  /** Host without brackets; '' means every interface. */
  host: string;
  port: number;
}

/** Splits `HOST:PORT`, `[v6]:PORT` or `:PORT`; throws ReceiverConfigError naming `key`. */
export function parseEndpoint(endpoint: string, key: string): ListenAddress {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(endpoint);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) {
    throw new ReceiverConfigError(`${key} must be HOST:PORT, e.g. 127.0.0.1:4318 (got "${endpoint}")`);
  }
  return { host: match[1] ?? match[2] ?? '', port };
}

/** Formats host and port back to `HOST:PORT`, bracketing IPv6 hosts. */
export function formatEndpoint(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
