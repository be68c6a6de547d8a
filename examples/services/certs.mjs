// Certificates for the mutual-TLS part of the demo, made at start with the `openssl` command:
// a throw-away CA, a server certificate for the ledger and a client certificate for payments.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Subject of the payments workload's client certificate (what the ledger records). */
export const PAYMENTS_SUBJECT = '/O=Demo Shop/OU=payments/CN=payments.shop.svc';
/** DNS name in the ledger's server certificate. */
export const LEDGER_HOST = 'ledger.finance.svc';
/** Validity of every demo certificate. */
export const CERT_DAYS = 2;

function openssl(args, cwd) {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** True when an `openssl` command is available. */
export function hasOpenssl() {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Writes a CA, a ledger server certificate and a payments client certificate into `dir`.
 * Returns the PEM texts: `{ca, server: {cert, key}, client: {cert, key}}`.
 */
export function makeCertificates(dir) {
  if (!hasOpenssl()) {
    throw new Error('the mutual-TLS demo needs the openssl command (apt-get install openssl, brew install openssl)');
  }
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', String(CERT_DAYS), '-subj', '/O=Demo Shop/CN=Demo Shop internal CA'], dir);
  const leaf = (name, subject, ext) => {
    openssl(['req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject], dir);
    writeFileSync(join(dir, `${name}.ext`), ext);
    openssl(
      ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', String(CERT_DAYS), '-extfile', `${name}.ext`],
      dir,
    );
  };
  leaf('ledger', `/O=Demo Shop/OU=finance/CN=${LEDGER_HOST}`, `subjectAltName=DNS:${LEDGER_HOST}\nextendedKeyUsage=serverAuth\n`);
  leaf('payments', PAYMENTS_SUBJECT, 'subjectAltName=URI:spiffe://demo.shop/ns/shop/sa/payments\nextendedKeyUsage=clientAuth\n');
  const read = (f) => readFileSync(join(dir, f), 'utf8');
  return {
    ca: read('ca.crt'),
    server: { cert: read('ledger.crt'), key: read('ledger.key') },
    client: { cert: read('payments.crt'), key: read('payments.key') },
  };
}
