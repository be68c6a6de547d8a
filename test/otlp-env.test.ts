/**
 * Issue 17, docs/deployment.md: the OTLP exporter variables it gives (protocol with endpoint) are
 * taken from the page and handed, with nothing else, to the official OpenTelemetry Node.js SDK
 * (NodeSDK reads them itself) in a child process; the spans must reach a running conduct. The
 * Collector configurations in examples/collector/ use the current exporter names on the ports
 * that go with them.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { startTestConduct, type TestConduct } from './support/conduct.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

/** `OTEL_EXPORTER_OTLP_PROTOCOL=...` followed by `OTEL_EXPORTER_OTLP_ENDPOINT=...` pairs in a page. */
function documentedPairs(markdown: string): Array<{ protocol: string; endpoint: string }> {
  const pairs: Array<{ protocol: string; endpoint: string }> = [];
  const re = /^OTEL_EXPORTER_OTLP_PROTOCOL=(\S+)\s*\nOTEL_EXPORTER_OTLP_ENDPOINT=(\S+)\s*$/gm;
  for (let m = re.exec(markdown); m; m = re.exec(markdown)) pairs.push({ protocol: m[1], endpoint: m[2] });
  return pairs;
}

/** One client span from service `name`, exported by NodeSDK configured from the environment only. */
function exportOneSpan(name: string, env: Record<string, string>): Promise<string> {
  const script = `
    import { NodeSDK } from '@opentelemetry/sdk-node';
    import { trace, SpanKind } from '@opentelemetry/api';
    const sdk = new NodeSDK({ instrumentations: [] });
    sdk.start();
    const span = trace.getTracer('otlp-env-test').startSpan('GET /cart', {
      kind: SpanKind.CLIENT,
      attributes: { 'http.request.method': 'GET', 'peer.service': 'cart', 'url.full': 'http://cart:8080/cart' },
    });
    span.end();
    await sdk.shutdown();`;
  return new Promise((resolve, reject) =>
    execFile(
      process.execPath,
      ['--input-type=module', '-e', script],
      { cwd: ROOT, env: { PATH: process.env.PATH ?? '', OTEL_SERVICE_NAME: name, OTEL_TRACES_EXPORTER: 'otlp', OTEL_METRICS_EXPORTER: 'none', OTEL_LOGS_EXPORTER: 'none', ...env } },
      (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout + stderr)),
    ),
  );
}

describe('docs/deployment.md: OTLP exporter variables', () => {
  let conduct: TestConduct;
  const page = readFileSync(join(ROOT, 'docs/deployment.md'), 'utf8');
  const pairs = documentedPairs(page);

  beforeAll(async () => {
    conduct = await startTestConduct();
  });
  afterAll(async () => {
    await conduct?.dispose();
  });

  it('gives the protocol with each endpoint: grpc on 4317, http/protobuf on 4318', () => {
    expect(pairs).toEqual([
      { protocol: 'grpc', endpoint: 'http://conduct:4317' },
      { protocol: 'http/protobuf', endpoint: 'http://conduct:4318' },
    ]);
    // Nowhere an endpoint variable without its protocol next to it.
    const endpoints = page.match(/OTEL_EXPORTER_OTLP_ENDPOINT=\S+/g) ?? [];
    expect(endpoints.length).toBe(pairs.length);
  });

  for (const [i, service] of ['env-grpc', 'env-http-protobuf'].entries()) {
    it(`delivers spans through the official SDK with pair ${i + 1} of the page`, async () => {
      const { protocol, endpoint } = pairs[i];
      // conduct:4317 and conduct:4318 are this conduct's gRPC and HTTP receivers.
      const port = new URL(endpoint).port;
      const target = port === '4317' ? `http://${conduct.grpc}` : port === '4318' ? conduct.http : undefined;
      expect(target, endpoint).toBeDefined();
      await exportOneSpan(service, { OTEL_EXPORTER_OTLP_PROTOCOL: protocol, OTEL_EXPORTER_OTLP_ENDPOINT: target! });
      await conduct.flush();
      const ids = await conduct.get<{ identities: Array<{ id: string; calls: number }> }>('/api/v1/identities');
      expect(ids.body.identities).toContainEqual(expect.objectContaining({ id: `svc:${service}`, calls: 1 }));
    }, 60_000);
  }
});

describe('examples/collector: exporter names', () => {
  const dir = join(ROOT, 'examples/collector');
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));

  it('use otlp_grpc (to 4317) and otlp_http (to 4318), not the deprecated otlp / otlphttp', () => {
    expect(files.length).toBeGreaterThan(0);
    let otlpExporters = 0;
    for (const file of files) {
      const config = parseYaml(readFileSync(join(dir, file), 'utf8')) as { exporters: Record<string, { endpoint?: string }> };
      for (const [id, exporter] of Object.entries(config.exporters)) {
        const type = id.split('/')[0];
        expect(['otlp', 'otlphttp'], `${file}: ${id}`).not.toContain(type);
        if (type === 'otlp_grpc') expect(exporter.endpoint, `${file}: ${id}`).toMatch(/:4317$/);
        if (type === 'otlp_http') expect(exporter.endpoint, `${file}: ${id}`).toMatch(/:4318$/);
        if (type.startsWith('otlp_')) otlpExporters++;
      }
    }
    expect(otlpExporters).toBeGreaterThanOrEqual(3);
  });

  it('are described with the old names noted as aliases in docs/deployment.md', () => {
    const page = readFileSync(join(ROOT, 'docs/deployment.md'), 'utf8');
    expect(page).toMatch(/`otlp_grpc` and `otlp_http`/);
    expect(page).toMatch(/`otlp` \(gRPC\) and `otlphttp` \(HTTP\) still work as\s+deprecated aliases/);
  });
});
