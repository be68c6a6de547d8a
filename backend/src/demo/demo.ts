import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { silentLogger, type Logger } from '@conduct/processor';
import { SEVERITY_RANK, type Alert, type Severity } from '../alerts/model.js';
import { parseConfig, type ConfigInput } from '../config/index.js';
import { startConduct, type RunningConduct } from '../cli/start.js';
import { redactUrl } from '../store/postgres/connection.js';

/** Normal minutes replayed before the scenarios (enough for rate baselines: see detect/README). */
export const DEFAULT_LEARNING_MINUTES = 12;
/** Extra normal minutes allowed when some identity still learns after the planned ones. */
export const MAX_EXTRA_MINUTES = 8;
/** Learning settings of the demo's conduct: small, so identities enforce within the replay. */
export const DEMO_MIN_CALLS = 20;
export const DEMO_LEARNING_PERIOD = '5m';
/** How far in the past the demo clock starts (the replayed minutes end before now). */
export const DEMO_CLOCK_START_MS = 45 * 60_000;
const MINUTE_MS = 60_000;
/** A trace completes after this long without a new span (the demo flushes after every round anyway). */
export const DEMO_STITCHING_IDLE = '10s';

/** The examples folder: next to backend/ in the repository (same depth from src/ and dist/). */
export const EXAMPLES_DIR = fileURLToPath(new URL('../../../examples/', import.meta.url));

/** What a scenario expects (examples/scenarios/index.mjs). */
export interface ScenarioExpectation {
  identity?: string;
  detectors?: string[];
  minSeverity?: Severity;
  /** No alert at this severity or above, from any identity. */
  none?: Severity;
}

interface DemoSystem {
  ports: Record<string, number>;
  received: { partner: number; drop: number };
  setClock(offsetMs: number): Promise<unknown>;
  flush(): Promise<unknown>;
  url(name: string): string;
  stop(): Promise<void>;
}

interface Scenario {
  name: string;
  title: string;
  expect: ScenarioExpectation;
  run(system: DemoSystem, minute: number, env: { loopbackAliases: boolean }): Promise<unknown>;
}

interface ServicesModule {
  startSystem(o: { otlpEndpoint: string; dir: string; k8sAuditEndpoint?: string }): Promise<DemoSystem>;
  canUseLoopbackAddress(address: string): Promise<boolean>;
}

interface ScenariosModule {
  SCENARIOS: Scenario[];
  IDENTITIES: Record<string, string>;
  ATTACKER_LOOPBACK: string;
  normalMinute(system: DemoSystem, minute: number): Promise<void>;
}

export interface DemoOptions {
  /** Normal minutes before the scenarios. Default DEFAULT_LEARNING_MINUTES. */
  learningMinutes?: number;
  /** API and UI address; a free port on 127.0.0.1 by default. */
  apiEndpoint?: string;
  /** Only these scenarios (by name), in their usual order. */
  scenarios?: string[];
  /** Store in this PostgreSQL database (`storage.postgres.url`) instead of a temporary SQLite file. */
  postgresUrl?: string;
  /** Output of the demo, one line per call (the command prints it). */
  print?: (line: string) => void;
  /** Rewrites the progress line in place (a terminal); otherwise progress is printed line by line. */
  progress?: (line: string) => void;
  logger?: Logger;
}

export interface ScenarioResult {
  name: string;
  title: string;
  expect: ScenarioExpectation;
  /** Alerts raised (or repeated) while the scenario ran. */
  alerts: Alert[];
  passed: boolean;
  /** Why it failed, in a sentence. */
  reason?: string;
}

export interface DemoResult {
  passed: boolean;
  scenarios: ScenarioResult[];
  /** Alerts raised during the normal minutes (none is the goal). */
  learningAlerts: Alert[];
  /** Identities that still learned when the scenarios began. */
  stillLearning: string[];
  uiUrl: string;
  apiUrl: string;
  /** Stops the services and conduct and removes the temporary folder. Safe twice. */
  stop(): Promise<void>;
}

interface IdentityRow {
  id: string;
  status: string;
  calls: number;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`GET ${url}: ${res.status}`);
  return (await res.json()) as T;
}

/** The demo's conduct configuration: temporary database, ephemeral receivers, short learning. */
export function demoConfigInput(dbPath: string, apiEndpoint: string, postgresUrl?: string): ConfigInput {
  const file = parseYaml(readFileSync(join(EXAMPLES_DIR, 'policies', 'demo.yaml'), 'utf8')) as { policies?: ConfigInput['policies'] };
  return {
    // The Kubernetes audit receiver takes the demo API server's audit events (scenario stolen-sa-token).
    receivers: { grpc: { endpoint: '127.0.0.1:0' }, http: { endpoint: '127.0.0.1:0' }, k8sAudit: { endpoint: '127.0.0.1:0' } },
    api: { endpoint: apiEndpoint },
    storage: { path: dbPath, ...(postgresUrl ? { postgres: { url: postgresUrl } } : {}) },
    // Each round ends with a flush; the idle timeout only has to outlast the services' export batching.
    stitching: { idle: DEMO_STITCHING_IDLE },
    learning: { minCalls: DEMO_MIN_CALLS, period: DEMO_LEARNING_PERIOD },
    policies: file.policies ?? [],
    alerts: { traceUrl: `http://${apiEndpoint}/traces/{traceId}` },
    log: { level: 'error' },
  };
}

const atLeast = (a: Alert, s: Severity) => SEVERITY_RANK[a.severity] >= SEVERITY_RANK[s];

/** Judges a scenario's alerts against what it expects. */
export function judge(expect: ScenarioExpectation, alerts: readonly Alert[]): { passed: boolean; reason?: string } {
  if (expect.none) {
    const loud = alerts.filter((a) => atLeast(a, expect.none!));
    return loud.length === 0
      ? { passed: true }
      : { passed: false, reason: `expected nothing of ${expect.none} or above, got ${loud.map((a) => `${a.detector} ${a.severity} for ${a.identity}`).join(', ')}` };
  }
  const min = expect.minSeverity ?? 'medium';
  const hit = alerts.find(
    (a) => a.identity === expect.identity && atLeast(a, min) && (!expect.detectors || (a.detectors ?? [a.detector]).some((d) => expect.detectors!.includes(d))),
  );
  if (hit) return { passed: true };
  const mine = alerts.filter((a) => a.identity === expect.identity);
  return {
    passed: false,
    reason: `expected ${expect.detectors?.join(' or ') ?? 'an alert'} at ${min} or above for ${expect.identity}; ${
      mine.length ? `got ${mine.map((a) => `${a.detector} ${a.severity}`).join(', ')}` : 'got no alert for it'
    }`,
  };
}

/** One incident: severity, leading detector, identity, title, one line per finding, then the trace link. */
export function formatAlert(a: Alert): string {
  const repeat = a.count > 1 ? ` (x${a.count})` : '';
  // The leading finding is the headline; the others follow, each once.
  const findings = (a.findings ?? []).slice(1).map((f) => `\n      + ${f.severity.toUpperCase().padEnd(8)} ${f.detector.padEnd(16)} ${f.title}`).join('');
  return `  ! ${a.severity.toUpperCase().padEnd(8)} ${a.detector.padEnd(16)} ${a.identity}${repeat}\n      ${a.findings?.[0]?.title ?? a.title}${findings}\n      trace: ${a.links?.trace ?? a.traceId}`;
}

/**
 * Runs the demo: conduct on a temporary database, the example services sending it their traces,
 * normal minutes until the identities enforce, then each scenario with its alerts. Leaves
 * everything running until `stop()` of the result.
 */
export async function runDemo(options: DemoOptions = {}): Promise<DemoResult> {
  const print = options.print ?? (() => {});
  const progress = options.progress ?? print;
  const logger = options.logger ?? silentLogger;
  const services = (await import(pathToFileURL(join(EXAMPLES_DIR, 'services', 'system.mjs')).href)) as ServicesModule;
  const scenarioModule = (await import(pathToFileURL(join(EXAMPLES_DIR, 'scenarios', 'index.mjs')).href)) as ScenariosModule;
  const dir = mkdtempSync(join(tmpdir(), 'conduct-demo-'));
  const apiEndpoint = options.apiEndpoint ?? `127.0.0.1:${await freePort()}`;

  let conduct: RunningConduct | undefined;
  let system: DemoSystem | undefined;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await system?.stop().catch((err: unknown) => logger.warn({ err: String(err) }, 'demo services did not stop cleanly'));
    await conduct?.stop().catch((err: unknown) => logger.warn({ err: String(err) }, 'conduct did not stop cleanly'));
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    const config = parseConfig(demoConfigInput(join(dir, 'conduct.db'), apiEndpoint, options.postgresUrl), 'demo');
    conduct = await startConduct(config, { logger });
    const apiUrl = `http://${conduct.apiAddress}`;
    const database = config.storage.postgres ? redactUrl(config.storage.postgres.url) : config.storage.path;
    print(`conduct is running: UI ${apiUrl}/  OTLP/gRPC ${conduct.grpcAddress}  Kubernetes audit ${conduct.k8sAuditAddress}  database ${database}`);
    print('starting the example services (one process each, OpenTelemetry SDK -> conduct over OTLP/gRPC; the API server\'s audit events -> its audit webhook) ...');
    system = await services.startSystem({ otlpEndpoint: `http://${conduct.grpcAddress}`, dir, k8sAuditEndpoint: conduct.k8sAuditAddress });
    const loopbackAliases = await services.canUseLoopbackAddress(scenarioModule.ATTACKER_LOOPBACK);

    const clockStart = Math.floor((Date.now() - DEMO_CLOCK_START_MS) / MINUTE_MS) * MINUTE_MS;
    let minute = 0;
    const seen = new Map<string, number>();
    const enterMinute = async () => {
      minute++;
      await system!.setClock(clockStart + minute * MINUTE_MS + 1_000 - Date.now());
    };
    const settle = async () => {
      await system!.flush();
      await conduct!.flush();
    };
    /** Alerts new (or repeated) since the last call. */
    const newAlerts = async (): Promise<Alert[]> => {
      const { alerts } = await getJson<{ alerts: Alert[] }>(`${apiUrl}/api/v1/alerts?limit=1000`);
      const fresh = alerts.filter((a) => (seen.get(a.id) ?? 0) < a.count).reverse();
      for (const a of fresh) seen.set(a.id, a.count);
      return fresh;
    };
    const watched = Object.values(scenarioModule.IDENTITIES);
    const learningState = async () => {
      const { identities } = await getJson<{ identities: IdentityRow[] }>(`${apiUrl}/api/v1/identities`);
      const rows = watched.map((id) => identities.find((i) => i.id === id));
      return { enforcing: rows.filter((r) => r?.status === 'enforcing').length, total: identities.length, learning: watched.filter((_, i) => rows[i]?.status !== 'enforcing') };
    };

    const planned = Math.max(1, options.learningMinutes ?? DEFAULT_LEARNING_MINUTES);
    print(`replaying normal operation, one minute of traffic per round on a demo clock (spans are stamped from ${new Date(clockStart).toISOString()})`);
    const learningAlerts: Alert[] = [];
    let state = { enforcing: 0, total: 0, learning: watched };
    for (let m = 0; m < planned + MAX_EXTRA_MINUTES; m++) {
      if (m >= planned && state.learning.length === 0) break;
      await enterMinute();
      await scenarioModule.normalMinute(system, minute);
      await settle();
      learningAlerts.push(...(await newAlerts()));
      state = await learningState();
      progress(`learning: minute ${m + 1}, ${state.total} identities seen, ${state.enforcing}/${watched.length} demo identities enforcing`);
    }
    if (state.learning.length) print(`still learning after ${minute} minutes: ${state.learning.join(', ')}`);
    for (const a of learningAlerts) print(`during normal traffic:\n${formatAlert(a)}`);

    const results: ScenarioResult[] = [];
    const chosen = scenarioModule.SCENARIOS.filter((s) => !options.scenarios || options.scenarios.includes(s.name));
    for (const scenario of chosen) {
      await enterMinute();
      print('');
      print(`scenario ${scenario.name}: ${scenario.title}`);
      await scenario.run(system, minute, { loopbackAliases });
      await settle();
      const alerts = await newAlerts();
      for (const a of alerts) print(formatAlert(a));
      if (alerts.length === 0) print('  (no alerts)');
      const verdict = judge(scenario.expect, alerts);
      results.push({ name: scenario.name, title: scenario.title, expect: scenario.expect, alerts, ...verdict });
    }

    print('');
    print('summary:');
    for (const r of results) print(`  ${r.passed ? 'ok  ' : 'FAIL'} ${r.name}${r.reason ? `: ${r.reason}` : ''}`);
    print(`UI: ${apiUrl}/  (alerts: ${apiUrl}/alerts)`);
    return {
      passed: results.every((r) => r.passed),
      scenarios: results,
      learningAlerts,
      stillLearning: state.learning,
      uiUrl: `${apiUrl}/`,
      apiUrl,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
