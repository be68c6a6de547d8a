import { appendFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DeliveryError } from './types.js';

/** Appends lines to a file (created with its directory) or, for path `-`, writes them to stdout. */
export interface LineWriter {
  write(line: string): Promise<void>;
}

export function createLineWriter(path: string): LineWriter {
  if (path === '-') {
    return {
      write: (line) =>
        new Promise((resolve, reject) =>
          process.stdout.write(line, (err) => (err ? reject(new DeliveryError(`stdout: ${err.message}`, true)) : resolve())),
        ),
    };
  }
  let dirReady = false;
  return {
    async write(line) {
      try {
        if (!dirReady) {
          await mkdir(dirname(path), { recursive: true });
          dirReady = true;
        }
        // Opened per line: alerts are rare, and rotation by rename or truncation just works.
        await appendFile(path, line, { encoding: 'utf8', mode: 0o640 });
      } catch (err) {
        dirReady = false;
        throw new DeliveryError(`writing ${path}: ${String(err)}`, true);
      }
    },
  };
}
