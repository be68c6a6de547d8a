import { describe, expect, it } from 'vitest';
import { createLogger } from '../log/index.js';
import { ConfigError, configSummary, expandEnv, parseConfigText, textsToHide, valuesFromEnvironment } from './index.js';

const ENV = { CONDUCT_TOKEN: 's3cret-from-env', DB_DIR: '/var/lib/conduct', EMPTY: '', MAX: '250000', DIGITS: '12345', MTLS: 'true' };

describe('${env:NAME} in configuration values', () => {
  it('expands references anywhere in values: nested, in lists, within text, with defaults; never in keys', () => {
    const yaml = `
api:
  token: \${env:CONDUCT_TOKEN}
storage:
  path: "\${env:DB_DIR}/conduct.db"
alerts:
  traceUrl: "\${env:TRACE_UI:-http://jaeger:16686}/trace/{traceId}"
  sinks:
    - type: webhook
      endpoint: http://hooks.local/x
      headers: { "\${env:CONDUCT_TOKEN}": "Bearer \${env:CONDUCT_TOKEN}" }
policies:
  - { match: "svc:*", expectedPeers: ["\${env:EMPTY}", "a"] }
`;
    const c = parseConfigText(yaml, 'conduct.yaml', ENV);
    expect(c.api.token).toBe('s3cret-from-env');
    expect(c.storage.path).toBe('/var/lib/conduct/conduct.db');
    expect(c.alerts.traceUrl).toBe('http://jaeger:16686/trace/{traceId}');
    const sink = c.alerts.sinks[0]!;
    expect('headers' in sink ? sink.headers : undefined).toEqual({ '${env:CONDUCT_TOKEN}': 'Bearer s3cret-from-env' });
    expect(c.policies[0]!.expectedPeers).toEqual(['', 'a']);
    // A set variable wins over the default, even when empty.
    expect(parseConfigText('alerts: { traceUrl: "${env:EMPTY:-x}" }', 'f', ENV).alerts.traceUrl).toBe('');
  });

  it('an unset variable without a default stops start-up, naming the key and the variable', () => {
    const attempt = () => parseConfigText('receivers:\n  grpc:\n    auth: { token: "${env:CONDUCT_GRPC_TOKEN}" }\n', 'conduct.yaml', ENV);
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(/conduct\.yaml: receivers\.grpc\.auth\.token: environment variable CONDUCT_GRPC_TOKEN is not set/);
    expect(() => parseConfigText('policies: [{ match: "${env:A}", purpose: "${env:B}" }]', 'f', {})).toThrow(/policies\.0\.match: environment variable A is not set.*policies\.0\.purpose: environment variable B/);
  });

  it('refuses malformed references naming the key', () => {
    expect(() => parseConfigText('api: { token: "${env:TOKEN" }', 'f', ENV)).toThrow(/api\.token: "\$\{env:" has no closing "\}"/);
    expect(() => parseConfigText('api: { token: "${env:1BAD}" }', 'f', ENV)).toThrow(/api\.token: "1BAD" in \$\{env:1BAD\} is not an environment variable name/);
  });

  it('$${ is a literal ${, and other text with $ stays as written', () => {
    const c = parseConfigText('api: { token: "$${env:NOT_EXPANDED}$5$$x" }\nalerts: { traceUrl: "${other:thing}" }', 'f', ENV);
    expect(c.api.token).toBe('${env:NOT_EXPANDED}$5$$x');
    expect(c.alerts.traceUrl).toBe('${other:thing}');
  });

  it('a whole-value reference takes its type: numbers and booleans where the schema wants them, text where it wants text', () => {
    const yaml = [
      'stitching: { maxPendingSpans: "${env:MAX}" }',
      'api: { token: "${env:DIGITS}", tls: { cert: a.pem, key: a.key, ca: ca.pem, clientAuth: "${env:MTLS}" } }',
      'learning: { minCalls: "${env:DIGITS}" }',
    ].join('\n');
    const c = parseConfigText(yaml, 'f', ENV);
    expect(c.stitching.maxPendingSpans).toBe(250_000);
    expect(c.learning.minCalls).toBe(12_345);
    expect(c.api.token).toBe('12345');
    expect(c.api.tls?.clientAuth).toBe(true);
  });

  it('error messages show the reference, not the value read from the environment', () => {
    const env = { IDLE: 'hunter2-not-a-duration', SHORT: '5', PORT_SPEC: 'db.internal:99999' };
    const message = (yaml: string) => {
      try {
        parseConfigText(yaml, 'f', env);
      } catch (err) {
        return (err as Error).message;
      }
      throw new Error('expected a ConfigError');
    };
    const idle = message('stitching: { idle: "${env:IDLE}" }');
    expect(idle).toContain('stitching.idle: "${env:IDLE}" is not a duration');
    expect(idle).not.toContain('hunter2');
    const bare = message('stitching: { idle: "${env:SHORT}" }');
    expect(bare).toBe('f: stitching.idle: ${env:SHORT} has no unit: write a duration such as ${env:SHORT}s, ${env:SHORT}ms, ${env:SHORT}m or ${env:SHORT}h');
    const endpoint = message('api: { endpoint: "${env:PORT_SPEC}" }');
    expect(endpoint).toContain('api.endpoint: the port must be from 0 to 65535');
  });

  it('log lines and the configuration summary show the reference instead of the value', () => {
    const yaml = 'api: { token: "${env:CONDUCT_TOKEN}" }\nstorage: { path: "${env:DB_DIR}/c.db" }\nstitching: { maxPendingSpans: "${env:MAX}" }';
    const config = parseConfigText(yaml, 'f', ENV);
    expect(valuesFromEnvironment(config).map((e) => e.key).sort()).toEqual(['api.token', 'stitching.maxPendingSpans', 'storage.path']);
    const lines: string[] = [];
    const logger = createLogger({ format: 'json', destination: { write: (s: string) => void lines.push(s) }, hide: textsToHide(valuesFromEnvironment(config)) });
    logger.info({ config: configSummary(config), db: config.storage.path }, `opened ${config.storage.path} with ${config.api.token}`);
    logger.error({ err: new Error(`cannot open ${config.storage.path}`).message }, 'failed');
    const text = lines.join('');
    expect(text).not.toContain('s3cret-from-env');
    expect(text).not.toContain('/var/lib/conduct');
    expect(text).not.toContain('250000');
    const [first, second] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(first).toMatchObject({ msg: 'opened ${env:DB_DIR}/c.db with ${env:CONDUCT_TOKEN}', db: '${env:DB_DIR}/c.db' });
    expect(first!['config']).toMatchObject({ storage: { path: '${env:DB_DIR}/c.db' }, stitching: { maxPendingSpans: '${env:MAX}' }, api: { token: true } });
    expect(second).toMatchObject({ err: 'cannot open ${env:DB_DIR}/c.db' });
  });

  it('expandEnv leaves its input unchanged and lists what it expanded', () => {
    const doc = { a: { b: ['${env:MAX}', 'plain'] } };
    const out = expandEnv(doc, ENV);
    expect(doc.a.b[0]).toBe('${env:MAX}');
    expect(out.value).toEqual({ a: { b: [250000, 'plain'] } });
    expect(out.expanded).toEqual([{ key: 'a.b.0', original: '${env:MAX}', expanded: '250000', variables: [{ name: 'MAX', value: '250000' }], typed: true }]);
    expect(out.problems).toEqual([]);
  });
});
