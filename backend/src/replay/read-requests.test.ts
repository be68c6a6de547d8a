import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeTracesRequest } from '@conduct/proto';
import { detectFormat, readRequests, type RequestItem } from './read-requests.js';

const dir = mkdtempSync(join(tmpdir(), 'conduct-read-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const example = readFileSync(new URL('../../../test/data/otlp-examples/trace.json', import.meta.url), 'utf8');

async function all(path: string): Promise<RequestItem[]> {
  const out: RequestItem[] = [];
  for await (const item of readRequests(path)) out.push(item);
  return out;
}

describe('replay request files', () => {
  it('reads a pretty-printed JSON request as one request', async () => {
    const path = join(dir, 'one.json');
    writeFileSync(path, example);
    const items = await all(path);
    expect(items).toHaveLength(1);
    expect(items[0]!.ok && items[0]!.data.spanCount).toBe(1);
  });

  it('reads JSON lines whatever the extension, and gzip', async () => {
    const line = JSON.stringify(JSON.parse(example));
    const path = join(dir, 'requests.txt');
    writeFileSync(path, `${line}\n${line}\n`);
    expect((await detectFormat(path)).format).toBe('json');
    expect((await all(path)).filter((i) => i.ok)).toHaveLength(2);
    const gz = join(dir, 'requests.jsonl.gz');
    writeFileSync(gz, gzipSync(`${line}\n${line}\n${line}\n`));
    expect((await all(gz)).filter((i) => i.ok)).toHaveLength(3);
  });

  it('reads a protobuf request by extension or by content', async () => {
    const bytes = encodeTracesRequest({
      resourceSpans: [
        {
          scopeSpans: [
            {
              spans: [{ traceId: Buffer.alloc(16, 1), spanId: Buffer.alloc(8, 2), name: 'x', kind: 2, startTimeUnixNano: 1, endTimeUnixNano: 2 }],
            },
          ],
        },
      ],
    });
    for (const name of ['req.pb', 'req.unknown']) {
      const path = join(dir, name);
      writeFileSync(path, bytes);
      expect((await detectFormat(path)).format).toBe('protobuf');
      const items = await all(path);
      expect(items).toHaveLength(1);
      expect(items[0]!.ok && items[0]!.data.spanCount).toBe(1);
    }
  });

  it('yields errors for bad entries instead of throwing', async () => {
    const path = join(dir, 'bad.pb');
    writeFileSync(path, Buffer.from([0x0a, 0xff, 0xff, 0xff]));
    const items = await all(path);
    expect(items).toHaveLength(1);
    expect(items[0]!.ok).toBe(false);
  });
});
