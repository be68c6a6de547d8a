// Certificates for the mutual-TLS part of the demo, made at start in JavaScript (Node's WebCrypto
// for the keys, `@peculiar/x509` for the certificates; no `openssl` command needed): a throw-away
// CA, a server certificate for the ledger and a client certificate for payments.
import { webcrypto } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Subject of the payments workload's client certificate (what the ledger records). */
export const PAYMENTS_SUBJECT = 'O=Demo Shop, OU=payments, CN=payments.shop.svc';
/** DNS name in the ledger's server certificate. */
export const LEDGER_HOST = 'ledger.finance.svc';
/** Validity of every demo certificate. */
export const CERT_DAYS = 2;

const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * The certificate library, loaded on first use: every demo service imports this module for the
 * constants above, and loading @peculiar/x509 (with reflect-metadata, which its ASN.1 encoders
 * need through tsyringe) in each of them made every service start cost a quarter more CPU.
 */
let x509;
async function loadX509() {
  if (!x509) {
    await import('reflect-metadata');
    x509 = await import('@peculiar/x509');
    x509.cryptoProvider.set(webcrypto);
  }
  return x509;
}

function validity() {
  // An hour of slack before now, for clocks a little behind.
  const notBefore = new Date(Date.now() - 60 * 60 * 1000);
  return { notBefore, notAfter: new Date(notBefore.getTime() + CERT_DAYS * DAY_MS) };
}

function serialNumber() {
  // Positive 16-byte serial: the top bit cleared so DER does not read it as negative.
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] &= 0x7f;
  return Buffer.from(bytes).toString('hex');
}

async function newKeys() {
  return webcrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify']);
}

async function privateKeyPem(keys) {
  const der = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

async function makeCa() {
  const keys = await newKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: 'O=Demo Shop, CN=Demo Shop internal CA',
    ...validity(),
    signingAlgorithm: EC_P256,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert, keys };
}

/** A leaf certificate signed by `ca`: `usage` is serverAuth or clientAuth, `altName` one SAN. */
async function makeLeaf(ca, subject, usage, altName) {
  const keys = await newKeys();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject,
    issuer: ca.cert.subject,
    ...validity(),
    signingAlgorithm: EC_P256,
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([usage]),
      new x509.SubjectAlternativeNameExtension([altName]),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert),
    ],
  });
  return { cert: cert.toString('pem'), key: await privateKeyPem(keys) };
}

/**
 * Writes a CA, a ledger server certificate and a payments client certificate into `dir` (for
 * looking at them; the services take the PEM texts). Returns `{ca, server: {cert, key}, client:
 * {cert, key}}`.
 */
export async function makeCertificates(dir) {
  await loadX509();
  const ca = await makeCa();
  const server = await makeLeaf(ca, `O=Demo Shop, OU=finance, CN=${LEDGER_HOST}`, x509.ExtendedKeyUsage.serverAuth, {
    type: 'dns',
    value: LEDGER_HOST,
  });
  const client = await makeLeaf(ca, PAYMENTS_SUBJECT, x509.ExtendedKeyUsage.clientAuth, {
    type: 'url',
    value: 'spiffe://demo.shop/ns/shop/sa/payments',
  });
  const caPem = ca.cert.toString('pem');
  const files = { 'ca.crt': caPem, 'ledger.crt': server.cert, 'ledger.key': server.key, 'payments.crt': client.cert, 'payments.key': client.key };
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text, { mode: 0o600 });
  return { ca: caPem, server, client };
}
