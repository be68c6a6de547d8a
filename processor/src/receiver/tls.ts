import { readFile } from 'node:fs/promises';
import { ReceiverConfigError, type ReceiverTlsConfig } from './config.js';

/** PEM material of a receiver's TLS config, read from its files. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
  clientAuth: boolean;
}

/** Reads the PEM files named by `tls`; a file that cannot be read fails with the key's name. */
export async function loadTlsMaterial(tls: ReceiverTlsConfig, prefix: string): Promise<TlsMaterial> {
  const read = async (path: string, key: string): Promise<Buffer> => {
    try {
      return await readFile(path);
    } catch (error) {
      throw new ReceiverConfigError(`${prefix}.tls.${key}: cannot read "${path}" (${(error as Error).message})`);
    }
  };
  // Read in the order of the keys, so that the error names the first bad key whichever read ends
  // first (with Promise.all the key's error could win over the cert's: a flaky message).
  const cert = await read(tls.cert, 'cert');
  const key = await read(tls.key, 'key');
  const ca = tls.ca ? await read(tls.ca, 'ca') : undefined;
  return ca ? { cert, key, ca, clientAuth: tls.clientAuth } : { cert, key, clientAuth: tls.clientAuth };
}
