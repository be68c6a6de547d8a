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
  const [cert, key, ca] = await Promise.all([
    read(tls.cert, 'cert'),
    read(tls.key, 'key'),
    tls.ca ? read(tls.ca, 'ca') : Promise.resolve(undefined),
  ]);
  return ca ? { cert, key, ca, clientAuth: tls.clientAuth } : { cert, key, clientAuth: tls.clientAuth };
}
