import { createServer, type AddressInfo } from 'node:net';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger, routeGrpcLogs } from './index.js';

describe('grpc-js messages', () => {
  afterEach(() => vi.restoreAllMocks());

  it('go through the logger as JSON lines, not to the console', async () => {
    const lines: string[] = [];
    routeGrpcLogs(createLogger({ format: 'json', destination: { write: (s: string) => void lines.push(s) } }));
    const consoleError = vi.spyOn(console, 'error');

    // A port that is taken: grpc-js reports "No address added ..." through its logger.
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const port = (busy.address() as AddressInfo).port;
    const server = new Server();
    try {
      const bound = await new Promise<Error | null>((r) => server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (err) => r(err)));
      expect(bound?.message).toMatch(/EADDRINUSE/);
    } finally {
      server.forceShutdown();
      await new Promise((r) => busy.close(r));
    }
    const entries = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(entries).toContainEqual(expect.objectContaining({ level: 'error', source: 'grpc-js', msg: expect.stringContaining('No address added') }));
    expect(consoleError).not.toHaveBeenCalled();
  });
});
