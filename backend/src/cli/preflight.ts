import { createServer, type Server } from 'node:net';
import { splitEndpoint } from './endpoint.js';

/** A listen address from the configuration, with the key that set it (for messages). */
export interface ListenAddress {
  key: string;
  endpoint: string;
}

/**
 * Checks that every address can be listened on before start-up creates any file: each is bound
 * (all at once, so two keys naming one port clash here too) and released again. Port 0 and `""`
 * (off) are skipped. Throws an error naming the key and the address.
 */
export async function checkAddressesFree(addresses: readonly ListenAddress[]): Promise<void> {
  const held: Server[] = [];
  try {
    for (const { key, endpoint } of addresses) {
      if (endpoint === '') continue;
      const parts = splitEndpoint(endpoint);
      if (!parts) throw new Error(`${key}: "${endpoint}" is not HOST:PORT`);
      if (parts.port === 0) continue;
      held.push(await bind(parts.host, parts.port, key, endpoint));
    }
  } finally {
    await Promise.all(held.map((s) => new Promise((done) => s.close(done))));
  }
}

function bind(host: string, port: number, key: string, endpoint: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => {
      const why = err.code === 'EADDRINUSE' ? 'address already in use (EADDRINUSE)' : err.code === 'EACCES' ? 'permission denied' : err.message;
      reject(new Error(`${key}: cannot listen on ${endpoint}: ${why}`));
    });
    server.listen({ host, port, exclusive: true }, () => resolve(server));
  });
}
