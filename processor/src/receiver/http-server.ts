/*
 * The node:http(s) server under each HTTP receiver (OTLP/HTTP, Kubernetes audit): created with the
 * receiver's timeouts and TLS material, listening on its address, closed with a grace period.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../model.js';
import { formatEndpoint, type ListenAddress } from './endpoint.js';
import type { TlsMaterial } from './tls.js';

/** A listening receiver server and the `HOST:PORT` it bound. */
export interface ListeningServer {
  server: http.Server;
  endpoint: string;
}

/**
 * Creates the server (HTTPS when `tls` is given, asking for client certificates with mutual TLS)
 * and listens on `address`; errors after start are logged as `what`, never thrown.
 */
export async function listenHttp(
  options: http.ServerOptions,
  tls: TlsMaterial | undefined,
  address: ListenAddress,
  handle: (req: IncomingMessage, res: ServerResponse) => void,
  logger: Logger,
  what: string,
): Promise<ListeningServer> {
  const server = tls
    ? https.createServer({ ...options, cert: tls.cert, key: tls.key, ...(tls.ca ? { ca: tls.ca } : {}), requestCert: tls.clientAuth, rejectUnauthorized: tls.clientAuth }, handle)
    : http.createServer(options, handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(address.port, address.host || undefined, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (error) => logger.error({ err: error.message }, `${what} server error`));
  const bound = server.address() as AddressInfo;
  return { server, endpoint: formatEndpoint(bound.address, bound.port) };
}

/** Stops accepting, lets open requests finish for `graceMs`, then cuts what is left. */
export async function closeHttp(server: http.Server | undefined, graceMs: number): Promise<void> {
  if (!server || !server.listening) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => server.closeAllConnections(), graceMs);
    timer.unref();
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections();
  });
}
