/**
 * Issue 17: the demo's mutual-TLS certificates are made in JavaScript, so a machine with only Node
 * and npm runs the demo. The certificates are made in a child process whose PATH names an empty
 * directory (no `openssl` to call), then used for a real mutual-TLS handshake: the ledger's server
 * certificate must verify for its host name, and the payments client certificate must be accepted
 * with the subject the ledger records.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repo = fileURLToPath(new URL('../', import.meta.url));

interface Pem {
  cert: string;
  key: string;
}
interface DemoCerts {
  ca: string;
  server: Pem;
  client: Pem;
  host: string;
}

describe('demo certificates without openssl', () => {
  let dir: string;
  let certs: DemoCerts;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'conduct-certs-'));
    const emptyBin = join(dir, 'bin-empty');
    execFileSync('mkdir', [emptyBin]);
    const script = `
      const m = await import(${JSON.stringify(join(repo, 'examples/services/certs.mjs'))});
      const c = await m.makeCertificates(${JSON.stringify(dir)});
      process.stdout.write(JSON.stringify({ ...c, host: m.LEDGER_HOST }));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: repo,
      env: { PATH: emptyBin, HOME: dir },
      encoding: 'utf8',
    });
    certs = JSON.parse(out) as DemoCerts;
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes the CA and both key pairs into the scratch directory', () => {
    expect(readdirSync(dir).filter((f) => f !== 'bin-empty').sort()).toEqual(['ca.crt', 'ledger.crt', 'ledger.key', 'payments.crt', 'payments.key']);
  });

  it('carries a mutual-TLS handshake: server verified by host name, client subject seen by the server', async () => {
    const seen: Array<Record<string, string>> = [];
    const server = createServer({ ca: certs.ca, cert: certs.server.cert, key: certs.server.key, requestCert: true, rejectUnauthorized: true }, (socket) => {
      seen.push({ ...(socket.getPeerCertificate().subject as unknown as Record<string, string>) });
      socket.end('ok');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    try {
      const reply = await new Promise<{ authorized: boolean; body: string }>((resolve, reject) => {
        const socket: TLSSocket = connect({ host: '127.0.0.1', port, servername: certs.host, ca: certs.ca, cert: certs.client.cert, key: certs.client.key }, () => {
          let body = '';
          socket.setEncoding('utf8');
          socket.on('data', (d: string) => (body += d));
          socket.on('end', () => resolve({ authorized: socket.authorized, body }));
        });
        socket.on('error', reject);
      });
      expect(reply).toEqual({ authorized: true, body: 'ok' });
      expect(seen).toEqual([{ O: 'Demo Shop', OU: 'payments', CN: 'payments.shop.svc' }]);
    } finally {
      server.close();
    }
  });
});
