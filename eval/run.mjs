#!/usr/bin/env node
// conduct's precision benchmark (`npm run eval`): a seeded world of non-human identities over
// several days of event time, with benign change and the seed's attacks, sent as OTLP through the
// official exporters to a real `conduct serve` on SQLite; the alerts are read back through the
// HTTP API and scored per attack and per benign challenge. Exit status 1 when a target is missed.
// See eval/README.md.
import { existsSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Sender } from './send.mjs';
import { startServer } from './server.mjs';
import { score, table } from './score.mjs';
import { HOUR, createWorld, seeded } from './world.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const DEFAULT_SEED = 16;
const USAGE = `usage: node eval/run.mjs [--seed N] [--quick] [--days N] [--json FILE] [--transport http-proto|grpc] [--keep]
  --seed N        the world's seed (default ${DEFAULT_SEED})
  --quick         2 days, 12 h of learning (default: 4 days, 24 h of learning)
  --days N        days of event time (learning stays a quarter of the days, at least 12 h)
  --json FILE     also write the whole result as JSON
  --transport T   OTLP exporter: http-proto (default) or grpc
  --keep          keep the temporary folder (database, config) and print its path`;

function parseArgs(argv) {
  const o = { seed: DEFAULT_SEED, days: 4, quick: false, json: undefined, transport: 'http-proto', keep: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--seed') o.seed = Number(value());
    else if (a === '--quick') o.quick = true;
    else if (a === '--days') o.days = Number(value());
    else if (a === '--json') o.json = value();
    else if (a === '--transport') o.transport = value();
    else if (a === '--keep') o.keep = true;
    else if (a === '--help' || a === '-h') {
      process.stdout.write(USAGE + '\n');
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  if (o.quick) o.days = 2;
  if (!Number.isInteger(o.seed) || o.seed < 0) throw new Error('--seed needs a non-negative integer');
  if (!Number.isInteger(o.days) || o.days < 2 || o.days > 14) throw new Error('--days needs an integer from 2 to 14');
  if (!['http-proto', 'grpc'].includes(o.transport)) throw new Error('--transport is http-proto or grpc');
  return o;
}

async function readAlerts(server) {
  const byId = new Map();
  const add = (list) => {
    for (const a of list) byId.set(a.id, { ...a, firstSeenMs: Date.parse(a.firstSeen), lastSeenMs: Date.parse(a.lastSeen) });
  };
  const { identities } = await server.getJson('/api/v1/identities');
  add((await server.getJson('/api/v1/alerts?limit=1000')).alerts);
  for (const { id } of identities) add((await server.getJson(`/api/v1/alerts?identity=${encodeURIComponent(id)}&limit=1000`)).alerts);
  return { alerts: [...byId.values()], identities };
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${err.message}\n${USAGE}\n`);
    process.exit(2);
  }
  if (!existsSync(join(ROOT, 'backend/dist/cli/main.js'))) {
    process.stderr.write('conduct is not built: run `npm run build` (or `npm run eval`, which builds first)\n');
    process.exit(2);
  }
  const learningHours = Math.max(12, opts.days * 6);
  const started = Date.now();
  const log = (s) => process.stderr.write(`[eval] ${s}\n`);
  const world = createWorld({ seed: opts.seed, days: opts.days, learningHours });
  const settings = {
    // Traces complete on the flush after each hour of event time, never on their own: the
    // exporters' batches of one hour may arrive in any order.
    stitching: { idle: '120s', lateness: '6h' },
    learning: { minCalls: 30, period: `${learningHours}h` },
  };
  const server = await startServer(ROOT, settings, { keep: opts.keep });
  const sender = new Sender(server, opts.transport, seeded(opts.seed ^ 0x5eed));
  const labels = new Map();
  let failed;
  try {
    log(`seed ${opts.seed}: ${opts.days} days of event time from ${new Date(world.evalStart - learningHours * HOUR).toISOString()}, learning ${learningHours} h; conduct ${server.api}`);
    for (let h = 0; h < world.hours; h++) {
      for (const t of world.traces(h)) labels.set(sender.trace(t.at, t.root), t.label);
      await sender.drain();
      await server.flush();
      if ((h + 1) % 12 === 0) log(`hour ${h + 1}/${world.hours}: ${labels.size} traces, ${sender.spansSent} spans sent (${Math.round((Date.now() - started) / 1000)} s)`);
    }
    const metrics = await server.metrics();
    const { alerts, identities } = await readAlerts(server);
    const result = score({ labels, attacks: world.attacks, challenges: world.challenges, alerts });
    const header = [
      `conduct precision benchmark, ${new Date().toISOString()}, node ${process.version}`,
      `seed ${opts.seed}, ${opts.days} days of event time (learning ${learningHours} h), ${identities.length} identities, ${labels.size} traces, ${sender.spansSent} spans in ${sender.requests} OTLP requests (${opts.transport}), ${alerts.length} alerts; ${Math.round((Date.now() - started) / 1000)} s`,
    ];
    const processed = metrics.conduct_spans_processed_total;
    if (processed !== undefined && processed !== sender.spansSent) header.push(`WARNING: ${sender.spansSent} spans sent, ${processed} processed`);
    process.stdout.write(`${header.join('\n')}\n\n${table(result)}\n`);
    if (opts.json) {
      writeFileSync(
        opts.json,
        JSON.stringify({ date: new Date().toISOString(), seed: opts.seed, days: opts.days, learningHours, transport: opts.transport, traces: labels.size, spans: sender.spansSent, identities: identities.length, schedule: Object.fromEntries(Object.entries(world.schedule).map(([k, v]) => [k, new Date(v).toISOString()])), ...result }, null, 2),
      );
      log(`wrote ${opts.json}`);
    }
    if (opts.keep) log(`kept ${server.dir} (conduct.yaml, conduct.db)`);
    process.exitCode = result.met ? 0 : 1;
  } catch (err) {
    failed = err;
  } finally {
    await sender.close().catch(() => {});
    await server.stop();
  }
  if (failed) {
    process.stderr.write(`eval failed: ${failed.stack ?? failed}\n${server.stderr()}\n`);
    process.exit(2);
  }
}

await main();
