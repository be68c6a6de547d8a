// The precision benchmark's world: a company's non-human identities (CI bots, service accounts of
// a shop, certificate-holding finance workloads, AI agents, data jobs) and their peers (AWS-style
// APIs, HTTP services, databases, LLM providers and tools), generated from one seed over several
// days of event time. Days of normal work carry benign change (releases, retry storms, replica
// churn, ids in URLs, new identities, bursts, failovers); the seed's attacks are placed among them.
// Every trace the world makes is labelled: learning, a benign challenge, or an attack on one
// identity. Nothing here talks to conduct: run.mjs sends and scores.
import { SpanKind } from '@opentelemetry/api';

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;
/** Event time of the first trace: a Monday, midnight UTC. */
export const T0 = Date.UTC(2026, 10, 2, 0, 0, 0);

const HOME_ACCOUNT = '111122223333';
const DATA_LAKE_ACCOUNT = '444455556666';
const REGION = 'eu-west-1';
const SERVER = SpanKind.SERVER;
const CLIENT = SpanKind.CLIENT;
const INTERNAL = SpanKind.INTERNAL;

/** Deterministic pseudo-random numbers (mulberry32). */
export function seeded(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Dice {
  constructor(rng) {
    this.rng = rng;
  }
  next() {
    return this.rng();
  }
  int(lo, hi) {
    return lo + Math.floor(this.rng() * (hi - lo + 1));
  }
  pick(xs) {
    return xs[Math.floor(this.rng() * xs.length)];
  }
  chance(p) {
    return this.rng() < p;
  }
  hex(n) {
    let s = '';
    while (s.length < n) s += Math.floor(this.rng() * 16).toString(16);
    return s;
  }
  word(n) {
    const a = 'bcdfghjklmnpqrstvwxz2456789';
    let s = '';
    for (let i = 0; i < n; i++) s += a[Math.floor(this.rng() * a.length)];
    return s;
  }
  uuid() {
    const h = this.hex(32);
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20)}`;
  }
  /** Poisson-distributed count with mean `mean` (normal approximation above 30). */
  poisson(mean) {
    if (mean <= 0) return 0;
    if (mean > 30) return Math.max(0, Math.round(mean + Math.sqrt(mean) * this.gauss()));
    const l = Math.exp(-mean);
    let k = 0;
    let p = 1;
    do {
      k++;
      p *= this.rng();
    } while (p > l);
    return k - 1;
  }
  gauss() {
    const u = Math.max(1e-9, this.rng());
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.rng());
  }
}

/** Share of the peak rate by hour of day (UTC): quiet nights, busy office hours and evenings. */
const DIURNAL = [0.25, 0.2, 0.18, 0.18, 0.2, 0.25, 0.35, 0.5, 0.7, 0.85, 0.95, 1, 1, 0.95, 0.95, 0.9, 0.9, 0.85, 0.85, 0.9, 0.8, 0.65, 0.45, 0.35];

const FIRST_NAMES = ['maria', 'chen', 'olga', 'samir', 'lena', 'tom', 'ines', 'kofi', 'ana', 'raj', 'yuki', 'pablo', 'mei', 'ivan', 'sara', 'jonas', 'amara', 'luca'];
const LAST_NAMES = ['k', 'wei', 'petrova', 'haddad', 'berg', 'odell', 'silva', 'mensah', 'costa', 'patel', 'sato', 'ruiz', 'lin', 'orlov', 'nilsen', 'weber', 'diallo', 'rossi'];

/**
 * A workload of the world: a Kubernetes deployment (replicas on nodes, a version) or a job. Its
 * resource is what the OpenTelemetry SDK of one replica would report.
 */
class Workload {
  constructor(world, { ns, name, version, cluster = 'prod-eu-1', replicas = 3, subnet, extra = {} }) {
    this.world = world;
    this.ns = ns;
    this.name = name;
    this.version = version;
    this.cluster = cluster;
    this.replicaCount = replicas;
    this.subnet = subnet;
    this.extra = extra;
    this.rollout();
  }

  get id() {
    return `svc:${this.ns}/${this.name}`;
  }
  get host() {
    return `${this.name}.${this.ns}.svc.cluster.local`;
  }

  /** New replica set: new pod names, new nodes (pod addresses in each node's /24). */
  rollout({ version, subnet, cluster } = {}) {
    const d = this.world.dice;
    if (version) this.version = version;
    if (subnet !== undefined) this.subnet = subnet;
    if (cluster) this.cluster = cluster;
    const rs = d.hex(10);
    this.replicas = Array.from({ length: this.replicaCount }, () => {
      const node = this.subnet + d.int(0, 2);
      return {
        pod: `${this.name}-${rs}-${d.word(5)}`,
        node: `ip-10-${node >> 8}-${node & 255}-${d.int(10, 200)}.${REGION}.compute.internal`,
        ip: `10.${node >> 8}.${node & 255}.${d.int(2, 250)}`,
        fresh: 0,
      };
    });
  }

  /** One replica: its resource and pod address. */
  replica() {
    const r = this.world.dice.pick(this.replicas);
    return {
      w: this,
      r,
      ip: r.ip,
      resource: {
        'service.name': this.name,
        'service.namespace': this.ns,
        'service.version': this.version,
        'deployment.environment.name': 'production',
        'host.name': r.node,
        'k8s.pod.name': r.pod,
        'k8s.namespace.name': this.ns,
        'k8s.cluster.name': this.cluster,
        'cloud.provider': 'aws',
        'cloud.region': REGION,
        'cloud.account.id': HOME_ACCOUNT,
        ...this.extra,
      },
    };
  }
}

// ---- span helpers -------------------------------------------------------------------------------

/** A client span of `from` calling the HTTP service `to` (instrumented: its server span is the child). */
function http(from, to, method, route, path, { at = 1, dur = 8, status = 200, children = [], ua } = {}) {
  // `to`: a workload (any replica answers) or one replica whose own spans the caller nests.
  const callee = to instanceof Workload ? to.replica() : to;
  const host = callee.w.host;
  const error = status >= 500 ? `HTTP ${status}` : undefined;
  const server = {
    name: `${method} ${route}`,
    kind: SERVER,
    resource: callee.resource,
    at: at + 1,
    dur: dur - 2,
    error,
    attrs: {
      'http.request.method': method,
      'http.route': route,
      'url.path': path,
      'url.scheme': 'http',
      'server.address': host,
      'server.port': 8080,
      'client.address': from.ip,
      'network.peer.address': from.ip,
      'user_agent.original': ua ?? 'node',
      'http.response.status_code': status,
    },
    children,
  };
  return {
    name: method,
    kind: CLIENT,
    resource: from.resource,
    at,
    dur,
    error,
    attrs: {
      'http.request.method': method,
      'url.full': `http://${host}:8080${path}`,
      'server.address': host,
      'server.port': 8080,
      'http.response.status_code': status,
    },
    children: [server],
  };
}

/** A client span to a host that sends no spans (an external API, a legacy service, the registry). */
function httpOut(from, method, url, { at = 1, dur = 30, status = 200, attrs = {} } = {}) {
  const u = new URL(url);
  return {
    name: method,
    kind: CLIENT,
    resource: from.resource,
    at,
    dur,
    error: status >= 500 ? `HTTP ${status}` : undefined,
    attrs: {
      'http.request.method': method,
      'url.full': url,
      'server.address': u.hostname,
      'server.port': Number(u.port || (u.protocol === 'https:' ? 443 : 80)),
      'http.response.status_code': status,
      ...attrs,
    },
  };
}

/** A database client span. */
function db(from, system, namespace, op, table, host, { at = 1, dur = 3 } = {}) {
  const text = op === 'SELECT' ? `SELECT * FROM ${table} WHERE id = $1` : op === 'INSERT' ? `INSERT INTO ${table} VALUES ($1, $2)` : `UPDATE ${table} SET status = $1 WHERE id = $2`;
  return {
    name: `${op} ${namespace}.${table}`,
    kind: CLIENT,
    resource: from.resource,
    at,
    dur,
    attrs: {
      'db.system.name': system,
      'db.namespace': namespace,
      'db.operation.name': op,
      'db.collection.name': table,
      'db.query.text': text,
      'server.address': host,
      'server.port': system === 'redis' ? 6379 : 5432,
    },
  };
}

function redis(from, op, { at = 1 } = {}) {
  return {
    name: op,
    kind: CLIENT,
    resource: from.resource,
    at,
    dur: 1,
    attrs: { 'db.system.name': 'redis', 'db.operation.name': op, 'db.namespace': '0', 'server.address': 'cache.shop.svc.cluster.local', 'server.port': 6379 },
  };
}

/** An AWS SDK client span (`rpc.system: aws-api`), `account` naming the account it acts on. */
function aws(from, service, method, { account = HOME_ACCOUNT, bucket, at = 1, dur = 25, host } = {}) {
  const endpoint = host ?? (service === 'IAM' ? 'iam.amazonaws.com' : service === 'STS' ? `sts.${REGION}.amazonaws.com` : `${service.toLowerCase()}.${REGION}.amazonaws.com`);
  return {
    name: `${service}.${method}`,
    kind: CLIENT,
    resource: from.resource,
    at,
    dur,
    attrs: {
      'rpc.system': 'aws-api',
      'rpc.service': service,
      'rpc.method': method,
      'cloud.region': REGION,
      'cloud.account.id': account,
      'server.address': endpoint,
      'server.port': 443,
      ...(bucket ? { 'aws.s3.bucket': bucket } : {}),
    },
  };
}

/** Lays `specs` out one after the other from `at`, each `gap` ms after the previous one ends. */
function seq(specs, at = 1, gap = 2) {
  let t = at;
  for (const s of specs) {
    s.at = t;
    const end = t + (s.dur ?? 4);
    let childEnd = end;
    for (const c of s.children ?? []) childEnd = Math.max(childEnd, t + (c.at ?? 0) + (c.dur ?? 4));
    t = Math.max(end, childEnd) + gap;
  }
  return specs;
}

/** A span whose duration covers its children. */
function span(name, kind, resource, attrs, children, { at = 0, error } = {}) {
  let end = 5;
  for (const c of children) end = Math.max(end, (c.at ?? 0) + (c.dur ?? 4) + 1);
  return { name, kind, resource, attrs, at, dur: end, children, error };
}

// ---- the world ----------------------------------------------------------------------------------

/**
 * The world for `seed`: `days` of event time, the first `learningHours` of them learning. Answers
 * `{hours, traces(hour) -> [{at, tag, root}], identities, attacks, challenges}`.
 */
export function createWorld({ seed, days, learningHours }) {
  const world = { dice: new Dice(seeded(seed)) };
  const d = world.dice;
  const hours = days * 24;
  const evalStart = T0 + learningHours * HOUR;
  const evalMs = hours * HOUR - learningHours * HOUR;
  /** Event time at a share of the evaluation period, on a whole minute plus a seeded jitter. */
  const when = (share) => evalStart + Math.floor((share * evalMs) / MINUTE) * MINUTE + d.int(0, 50) * 1000;
  /** How long a change counts as a challenge after it begins. */
  const changeWindow = Math.min(6 * HOUR, evalMs / 6);

  const W = (o) => new Workload(world, o);
  const svc = {
    storefront: W({ ns: 'shop', name: 'storefront', version: '4.12.0', subnet: 1 << 8 | 10 }),
    catalog: W({ ns: 'shop', name: 'catalog', version: '7.0.3', subnet: 1 << 8 | 10 }),
    inventory: W({ ns: 'shop', name: 'inventory', version: '2.8.1', subnet: 1 << 8 | 10 }),
    orders: W({ ns: 'shop', name: 'orders', version: '5.1.4', subnet: 1 << 8 | 10 }),
    payments: W({ ns: 'shop', name: 'payments-api', version: '3.3.0', subnet: 1 << 8 | 10 }),
    notifications: W({ ns: 'shop', name: 'notifications', version: '1.9.2', subnet: 1 << 8 | 10 }),
    auth: W({ ns: 'shop', name: 'auth', version: '6.0.0', subnet: 1 << 8 | 10 }),
    recommendations: W({ ns: 'shop', name: 'recommendations', version: '0.9.0', subnet: 1 << 8 | 10 }),
    fraud: W({ ns: 'shop', name: 'fraud-check', version: '1.0.0', subnet: 1 << 8 | 10 }),
    records: W({ ns: 'shop', name: 'records-api', version: '2.2.0', subnet: 1 << 8 | 10 }),
    ledger: W({ ns: 'finance', name: 'ledger-api', version: '11.4.0', cluster: 'fin-eu-1', subnet: 2 << 8 | 20 }),
    platform: W({ ns: 'platform', name: 'platform-api', version: '1.31.2', cluster: 'ci-eu-1', subnet: 3 << 8 | 30 }),
    helpdesk: W({ ns: 'support', name: 'helpdesk-api', version: '3.0.1', cluster: 'ai-eu-1', subnet: 4 << 8 | 40 }),
    crm: W({ ns: 'support', name: 'crm-api', version: '8.2.0', cluster: 'ai-eu-1', subnet: 4 << 8 | 40 }),
    schemaRegistry: W({ ns: 'data', name: 'schema-registry', version: '7.6.0', cluster: 'data-eu-1', subnet: 5 << 8 | 50 }),
  };
  const dbHost = { orders: 'orders-db-0.db.internal', catalog: 'catalog-db-0.db.internal', crm: 'crm-db-0.db.internal', ledger: 'ledger-db-0.db.internal' };

  // ---- identities -------------------------------------------------------------------------------
  const AGENTS = {
    'support-triage': { tools: ['get_ticket', 'search_kb', 'update_ticket'], model: 'gpt-4o', perHour: 8 },
    'sre-copilot': { tools: ['query_metrics', 'get_runbook', 'list_alerts'], model: 'claude-sonnet-4', perHour: 4 },
    'sales-assistant': { tools: ['search_products', 'get_price', 'draft_email'], model: 'gpt-4o-mini', perHour: 6 },
    'code-review': { tools: ['get_diff', 'get_file', 'post_comment'], model: 'claude-sonnet-4', perHour: 5 },
  };
  const agentSvc = Object.fromEntries(
    Object.keys(AGENTS).map((a) => [a, W({ ns: 'ai', name: a, version: '1.4.0', cluster: 'ai-eu-1', subnet: 4 << 8 | 41, replicas: 2 })]),
  );
  const CERTS = {
    'settlement-batch.finance.svc': { ua: 'settlement-batch/2.3 (java 21)', net: '10.2.31', perHour: 10, ops: [['GET', '/accounts/{account}/balance'], ['POST', '/transfers']] },
    'pos-gateway.retail.svc': { ua: 'pos-gw/5.0 (go1.22)', net: '10.2.32', perHour: 14, ops: [['POST', '/authorisations'], ['GET', '/accounts/{account}/balance']] },
    'payroll.hr.svc': { ua: 'payroll-runner/1.8 (python 3.12)', net: '10.2.33', perHour: 3, ops: [['POST', '/transfers'], ['GET', '/accounts/{account}/statements']] },
  };
  const CI = {
    'deploy-shop': { apps: ['storefront', 'catalog', 'orders', 'inventory'], perHour: 2 },
    'deploy-data': { apps: ['crm-export', 'etl-orders'], perHour: 1 },
    'deploy-finance': { apps: ['ledger-api'], perHour: 0.5 },
    'image-builder': { repos: ['shop/storefront', 'shop/catalog', 'shop/orders', 'ai/support-triage'], perHour: 3 },
  };
  const ciSvc = Object.fromEntries(Object.keys(CI).map((c) => [c, W({ ns: 'ci', name: `runner-${c}`, version: '2.319.1', cluster: 'ci-eu-1', subnet: 3 << 8 | 31, replicas: 4 })]));
  const jobs = {
    crmExport: W({ ns: 'data', name: 'crm-export', version: '2.0.4', cluster: 'data-eu-1', subnet: 5 << 8 | 51, replicas: 1 }),
    etl: W({ ns: 'data', name: 'etl-orders', version: '1.12.0', cluster: 'data-eu-1', subnet: 5 << 8 | 51, replicas: 2 }),
    reports: W({ ns: 'data', name: 'report-builder', version: '3.1.0', cluster: 'data-eu-1', subnet: 5 << 8 | 51, replicas: 1 }),
  };
  const newAgent = W({ ns: 'ai', name: 'invoice-reader', version: '0.1.0', cluster: 'ai-eu-1', subnet: 4 << 8 | 41, replicas: 1 });
  const newCi = W({ ns: 'ci', name: 'runner-deploy-search', version: '2.319.1', cluster: 'ci-eu-1', subnet: 3 << 8 | 31, replicas: 2 });

  const ids = {
    agent: (a) => `agent:${a}`,
    cert: (cn) => `cert:${cn}`,
    ci: (c) => `system:serviceaccount:ci:${c}`,
  };

  // ---- changes over time (benign and attacks) ---------------------------------------------------
  const at = {
    storefrontRelease: when(0.05),
    inventoryRetryStorm: when(0.12),
    llmRateLimit: when(0.16),
    nodeRotation: when(0.2),
    ciEnumeration: when(0.25),
    ordersRelease: when(0.3),
    newAgent: when(0.35),
    agentFlood: when(0.4),
    crmExportRelease: when(0.45),
    newCi: when(0.5),
    stolenCert: when(0.52),
    flashSale: when(0.55),
    exfiltration: when(0.6),
    paymentsRetryStorm: when(0.62),
    dbFailover: when(0.65),
    ciHotfixBurst: when(0.68),
    lateral: when(0.72),
    backfillBurst: when(0.78),
    poisonedRelease: when(0.85),
    drFailover: when(0.9),
  };
  const state = { now: T0, applied: new Set() };
  const active = (name) => state.now >= at[name];
  const fresh = (name) => state.now >= at[name] && state.now < at[name] + changeWindow;
  const during = (name, ms) => state.now >= at[name] && state.now < at[name] + ms;
  /** Applies each change once, when its time comes. */
  const once = (name, fn) => {
    if (active(name) && !state.applied.has(name)) {
      state.applied.add(name);
      fn();
    }
  };

  // ---- flows ------------------------------------------------------------------------------------
  const BROWSER = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36';
  /** Root span of a request from a browser through the load balancer. */
  const entry = (w, method, route, path, children) =>
    span(`${method} ${route}`, SERVER, w.resource, {
      'http.request.method': method,
      'http.route': route,
      'url.path': path,
      'url.scheme': 'https',
      'server.address': 'shop.example.com',
      'client.address': `10.1.0.${d.int(5, 8)}`,
      'user_agent.original': BROWSER,
      'http.response.status_code': 200,
    }, children);

  /** storefront -> inventory, retried after 503s during a retry storm. */
  function stockCalls(sf, sku, tags) {
    const calls = [];
    if (during('inventoryRetryStorm', 45 * MINUTE) && d.chance(0.8)) {
      tags.add('retry-storm');
      const fails = d.int(1, 3);
      for (let i = 0; i < fails; i++) calls.push(http(sf, svc.inventory, 'GET', '/stock/{sku}', `/stock/${sku}`, { status: 503, dur: 30 }));
    }
    const inv = svc.inventory.replica();
    calls.push(
      http(sf, inv, 'GET', '/stock/{sku}', `/stock/${sku}`, {
        children: [db(inv, 'postgresql', 'catalog', 'SELECT', 'stock', dbHost.catalog, { at: 3 })],
      }),
    );
    if (state.now >= at.drFailover && state.now < at.drFailover + HOUR) tags.add('failover');
    return calls;
  }

  function catalogCalls(sf, productId, tags, { reviews = false } = {}) {
    const cat = svc.catalog.replica();
    const kids = [redis(cat, 'GET')];
    if (d.chance(0.35)) kids.push(db(cat, 'postgresql', 'catalog', 'SELECT', 'products', dbHost.catalog), redis(cat, 'SET'));
    if (reviews) {
      kids.push(db(cat, 'postgresql', 'catalog', 'SELECT', 'reviews', dbHost.catalog));
      tags.add('release:storefrontRelease');
    }
    const beacon = poisonBeacon(cat, tags);
    if (beacon) kids.push(beacon);
    if (cat.resource['service.version'] === '7.1.0' && !beacon) tags.add('release:poisonedRelease');
    return http(sf, cat, 'GET', '/products/{id}', `/products/${productId}`, { dur: 20, children: seq(kids, 2, 1) });
  }

  /** The poisoned catalog build calls home on the first requests each new replica serves. */
  function poisonBeacon(cat, tags) {
    if (cat.resource['service.version'] !== '7.1.0' || cat.r.fresh >= 2) return undefined;
    cat.r.fresh++;
    tags.add('attack:poisoned-release');
    return httpOut(cat, 'POST', `https://cdn-assets-metrics.net/v1/collect?h=${d.hex(8)}`, { dur: 40 });
  }

  function browse() {
    const sf = svc.storefront.replica();
    const tags = new Set();
    const kids = [http(sf, svc.auth, 'GET', '/sessions/{id}', `/sessions/${d.uuid()}`, { dur: 6 })];
    const cat = svc.catalog.replica();
    kids.push(
      http(sf, cat, 'GET', '/products', `/products`, {
        dur: 25,
        children: seq([redis(cat, 'GET'), ...(d.chance(0.5) ? [db(cat, 'postgresql', 'catalog', 'SELECT', 'products', dbHost.catalog)] : [])], 2, 1),
      }),
    );
    if (svc.storefront.version === '4.13.0') {
      tags.add('release:storefrontRelease');
      const rec = svc.recommendations.replica();
      kids.push(http(sf, rec, 'GET', '/recommendations/{userId}', `/recommendations/${d.int(1000, 99999)}`, { children: [redis(rec, 'GET', { at: 2 })] }));
    }
    return { tags, root: entry(sf, 'GET', '/', '/', seq(kids)) };
  }

  function productPage() {
    const sf = svc.storefront.replica();
    const tags = new Set();
    const pid = d.int(1, 5000);
    const kids = [catalogCalls(sf, pid, tags, { reviews: svc.catalog.version !== '7.0.3' && d.chance(0.5) })];
    if (d.chance(0.7)) kids.push(...stockCalls(sf, `SKU-${d.int(10000, 99999)}`, tags));
    return { tags, root: entry(sf, 'GET', '/p/{id}', `/p/${pid}`, seq(kids)) };
  }

  function checkout() {
    const sf = svc.storefront.replica();
    const tags = new Set();
    const ord = svc.orders.replica();
    const pay = svc.payments.replica();
    const orderDb = dbHost.orders;
    const payCalls = [];
    if (during('paymentsRetryStorm', 20 * MINUTE) && d.chance(0.7)) {
      tags.add('retry-storm');
      payCalls.push(http(ord, pay, 'POST', '/charges', '/charges', { status: 502, dur: 40, children: [httpOut(pay, 'POST', 'https://api.stripe.com/v1/charges', { status: 503, at: 2 })] }));
    }
    payCalls.push(http(ord, pay, 'POST', '/charges', '/charges', { dur: 60, children: [httpOut(pay, 'POST', 'https://api.stripe.com/v1/charges', { at: 2, dur: 50 })] }));
    const orderKids = [db(ord, 'postgresql', 'orders', 'INSERT', 'orders', orderDb), ...payCalls, db(ord, 'postgresql', 'orders', 'UPDATE', 'orders', orderDb)];
    if (svc.orders.version === '5.2.0') {
      tags.add('release:ordersRelease');
      orderKids.splice(1, 0, http(ord, svc.fraud, 'POST', '/score', '/score', { dur: 15 }), redis(ord, 'GET'));
    }
    const notif = svc.notifications.replica();
    orderKids.push(
      http(ord, notif, 'POST', '/notify', '/notify', {
        children: [{ name: 'order-events publish', kind: SpanKind.PRODUCER, resource: notif.resource, at: 2, dur: 2, attrs: { 'messaging.system': 'kafka', 'messaging.destination.name': 'order-events', 'messaging.operation.type': 'send' } }],
      }),
    );
    const kids = [
      http(sf, svc.auth, 'GET', '/sessions/{id}', `/sessions/${d.uuid()}`, { dur: 6 }),
      ...stockCalls(sf, `SKU-${d.int(10000, 99999)}`, tags),
      http(sf, ord, 'POST', '/orders', '/orders', { dur: 200, children: seq(orderKids, 2, 2) }),
    ];
    return { tags, root: entry(sf, 'POST', '/checkout', '/checkout', seq(kids)) };
  }

  /** The account page reads the customer's profile from a legacy service by user name (no route). */
  function accountPage() {
    const sf = svc.storefront.replica();
    const tags = new Set(['id-churn']);
    const user = `${d.pick(FIRST_NAMES)}.${d.pick(LAST_NAMES)}${d.chance(0.3) ? d.int(1, 99) : ''}`;
    const kids = [
      http(sf, svc.auth, 'GET', '/sessions/{id}', `/sessions/${d.uuid()}`, { dur: 6 }),
      httpOut(sf, 'GET', `http://profiles.legacy.internal/api/profiles/${user}`, { dur: 12 }),
      httpOut(sf, 'GET', `http://profiles.legacy.internal/api/profiles/${user}/orders/${d.int(100000, 999999)}`, { dur: 12 }),
    ];
    return { tags, root: entry(sf, 'GET', '/account', '/account', seq(kids)) };
  }

  /** The storefront's link preview, abused (server-side request forgery) to reach internal APIs. */
  function lateralMovement() {
    const sf = svc.storefront.replica();
    const rec = svc.records.replica();
    const kids = [
      http(sf, rec, 'GET', '/customers/export', '/customers/export', { dur: 300, children: [db(rec, 'postgresql', 'crm', 'SELECT', 'customers', dbHost.crm, { at: 3, dur: 250 })] }),
      httpOut(sf, 'GET', 'http://169.254.169.254/latest/meta-data/iam/security-credentials/storefront-role', { dur: 3 }),
    ];
    return { tags: new Set(['attack:lateral-movement']), root: entry(sf, 'GET', '/preview', '/preview', seq(kids)) };
  }

  // Agents: an invoke_agent span (gen_ai.agent.id) with chat calls to the model provider and tools.
  function agentRun(name, { flood = false, w = agentSvc[name], cfg = AGENTS[name] } = {}) {
    const a = w.replica();
    const tags = new Set();
    const chat = () => ({
      name: `chat ${cfg.model}`,
      kind: CLIENT,
      resource: a.resource,
      dur: d.int(400, 2500),
      attrs: {
        'gen_ai.operation.name': 'chat',
        'gen_ai.provider.name': cfg.model.startsWith('claude') ? 'anthropic' : 'openai',
        'gen_ai.request.model': cfg.model,
        'server.address': cfg.model.startsWith('claude') ? 'api.anthropic.com' : 'api.openai.com',
        'server.port': 443,
      },
    });
    const tool = (t, children = []) => ({ name: `execute_tool ${t}`, kind: INTERNAL, resource: a.resource, dur: 30, attrs: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': t }, children });
    // While the model provider rate-limits (429), each chat call is retried after a back-off.
    const chatWithRetries = () => {
      if (!during('llmRateLimit', 40 * MINUTE) || !d.chance(0.5)) return [chat()];
      tags.add('retry-storm');
      const failed = Array.from({ length: d.int(1, 2) }, () => ({ ...chat(), dur: 60, error: 'HTTP 429', attrs: { ...chat().attrs, 'error.type': '429' } }));
      return [...failed, chat()];
    };
    const steps = [...chatWithRetries()];
    const backend = name === 'support-triage' ? svc.helpdesk : name === 'sales-assistant' || name === 'invoice-reader' ? svc.crm : undefined;
    const toolCall = (t) => {
      if (name === 'support-triage' && t === 'get_ticket') return tool(t, [httpOut(a, 'GET', `https://acme.zendesk.com/api/v2/tickets/${d.int(100000, 999999)}.json`, { at: 2, dur: 20 })]);
      if (backend) return tool(t, [http(a, backend, 'POST', `/tools/${t}`, `/tools/${t}`, { at: 2, dur: 20 })]);
      return tool(t);
    };
    const used = cfg.tools.filter((t, i) => i === 0 || d.chance(0.75));
    for (const t of used) steps.push(toolCall(t), ...chatWithRetries());
    if (flood) {
      tags.add('attack:agent-tool-flood');
      for (let i = 0; i < 40; i++) steps.push(tool('lookup_customer', [http(a, svc.crm, 'POST', '/tools/lookup_customer', '/tools/lookup_customer', { at: 2, dur: 10 })]), tool('get_payment_methods', [http(a, svc.crm, 'POST', '/tools/get_payment_methods', '/tools/get_payment_methods', { at: 2, dur: 10 })]));
      steps.push(chat());
    }
    if (name === 'support-triage') tags.add('id-churn');
    const invoke = span(`invoke_agent ${name}`, INTERNAL, a.resource, { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.id': name, 'gen_ai.agent.name': name }, seq(steps, 2, 5), { at: 1 });
    return { tags, root: span(`POST /v1/run`, SERVER, a.resource, { 'http.request.method': 'POST', 'http.route': '/v1/run', 'url.path': '/v1/run', 'client.address': '10.4.0.9', 'http.response.status_code': 200 }, [invoke]) };
  }

  // Certificate workloads: uninstrumented clients authenticated by mutual TLS at the ledger API.
  function certCall(cn, { attacker = false } = {}) {
    const cfg = CERTS[cn];
    const led = svc.ledger.replica();
    const [method, route] = attacker ? d.pick([['GET', '/accounts/{account}/balance'], ['GET', '/accounts/{account}/statements'], ['GET', '/accounts/{account}/balance']]) : d.pick(cfg.ops);
    const acct = `ACC-${d.int(100000, 999999)}`;
    const path = route.replace('{account}', acct);
    const op = method === 'GET' ? 'SELECT' : 'INSERT';
    const table = route.includes('transfers') ? 'transfers' : route.includes('statements') ? 'statements' : route.includes('authorisations') ? 'authorisations' : 'balances';
    const root = span(`${method} ${route}`, SERVER, led.resource, {
      'http.request.method': method,
      'http.route': route,
      'url.path': path,
      'url.scheme': 'https',
      'server.address': 'ledger.finance.internal',
      'tls.client.subject': `CN=${cn},OU=workloads,O=Example Corp`,
      'client.address': attacker ? `10.99.23.${d.int(5, 9)}` : `${cfg.net}.${d.int(10, 40)}`,
      'user_agent.original': attacker ? 'curl/8.5.0' : cfg.ua,
      'http.response.status_code': 200,
    }, [db(led, 'postgresql', 'ledger', op, table, dbHost.ledger, { at: 2 })]);
    return { tags: new Set(attacker ? ['attack:stolen-certificate'] : []), root };
  }

  // CI: a pipeline job, its runner pod fresh each time, acting with the job's service account.
  function ciJob(name, { enumerate = false, w = ciSvc[name], cfg = CI[name] } = {}) {
    w.rollout();
    const r = w.replica();
    const tags = new Set();
    const steps = [];
    if (cfg.repos) {
      tags.add('id-churn');
      const repo = d.pick(cfg.repos);
      const digest = `sha256:${d.hex(64)}`;
      steps.push(
        aws(r, 'ECR', 'GetAuthorizationToken'),
        httpOut(r, 'HEAD', `https://registry.ci.internal/v2/${repo}/manifests/${digest}`, { status: 404 }),
        httpOut(r, 'POST', `https://registry.ci.internal/v2/${repo}/blobs/uploads/`),
        httpOut(r, 'PUT', `https://registry.ci.internal/v2/${repo}/blobs/uploads/${d.uuid()}?digest=${digest}`, { dur: 800 }),
        httpOut(r, 'PUT', `https://registry.ci.internal/v2/${repo}/manifests/${digest}`),
        aws(r, 'S3', 'PutObject', { bucket: 'ci-build-logs' }),
      );
    } else {
      const app = d.pick(cfg.apps);
      steps.push(
        aws(r, 'STS', 'AssumeRoleWithWebIdentity'),
        aws(r, 'S3', 'GetObject', { bucket: 'ci-artifacts' }),
        aws(r, 'ECR', 'BatchGetImage'),
        http(r, svc.platform, 'GET', '/apis/apps/v1/namespaces/{namespace}/deployments/{name}', `/apis/apps/v1/namespaces/${name.slice(7)}/deployments/${app}`),
        http(r, svc.platform, 'PATCH', '/apis/apps/v1/namespaces/{namespace}/deployments/{name}', `/apis/apps/v1/namespaces/${name.slice(7)}/deployments/${app}`, { dur: 40 }),
      );
      for (let i = 0, n = d.int(1, 3); i < n; i++) steps.push(http(r, svc.platform, 'GET', '/api/v1/namespaces/{namespace}/pods', `/api/v1/namespaces/${name.slice(7)}/pods`));
      if (d.chance(0.5)) steps.push(aws(r, 'S3', 'PutObject', { bucket: 'ci-build-logs' }));
    }
    if (enumerate) {
      tags.add('attack:ci-enumeration');
      for (const account of ['210987654321', '310987654321', '410987654321', '510987654321', '610987654321']) {
        steps.push(aws(r, 'S3', 'ListBuckets', { account }), aws(r, 'IAM', 'ListRoles', { account }), aws(r, 'IAM', 'ListAttachedRolePolicies', { account }));
      }
    }
    const root = span(`job ${name}`, INTERNAL, r.resource, { 'enduser.id': ids.ci(name), 'cicd.pipeline.name': name, 'cicd.pipeline.run.id': String(d.int(1e6, 9e6)) }, seq(steps, 2, 20));
    return { tags, root };
  }

  // Data jobs.
  function crmExport({ exfiltrate = false } = {}) {
    const r = jobs.crmExport.replica();
    const tags = new Set();
    const steps = [db(r, 'postgresql', 'crm', 'SELECT', 'customers', dbHost.crm, { dur: 400 }), aws(r, 'S3', 'PutObject', { bucket: 'crm-exports', dur: 300 })];
    if (jobs.crmExport.version === '2.1.0') {
      tags.add('release:crmExportRelease');
      steps.unshift(http(r, svc.schemaRegistry, 'GET', '/subjects/{subject}/versions/latest', '/subjects/customers-value/versions/latest'));
    }
    steps.push(httpOut(r, 'POST', 'https://sftp-gw.partner-bank.com/upload', { dur: 900 }));
    if (exfiltrate) {
      tags.add('attack:data-exfiltration');
      steps.push(httpOut(r, 'PUT', `https://drop.fileshare-transfer.io/u/${d.word(12)}`, { dur: 1500 }));
    }
    return { tags, root: span('crm-export run', INTERNAL, r.resource, {}, seq(steps, 2, 10)) };
  }

  /** The orders read replica; its standby while the replica fails over (2 h). */
  function readReplica(tags) {
    if (!during('dbFailover', 2 * HOUR)) return 'orders-db-ro.db.internal';
    tags.add('failover');
    return 'orders-db-ro-standby.db.internal';
  }

  function etlRun() {
    const r = jobs.etl.replica();
    const tags = new Set();
    const replica = readReplica(tags);
    const steps = [
      db(r, 'postgresql', 'orders', 'SELECT', 'orders', replica, { dur: 200 }),
      db(r, 'postgresql', 'orders', 'SELECT', 'order_lines', replica, { dur: 200 }),
      aws(r, 'S3', 'PutObject', { bucket: 'lake-raw-orders', account: DATA_LAKE_ACCOUNT, dur: 300 }),
      aws(r, 'Glue', 'StartJobRun', { account: DATA_LAKE_ACCOUNT }),
    ];
    return { tags, root: span('etl-orders run', INTERNAL, r.resource, {}, seq(steps, 2, 10)) };
  }

  function reportRun() {
    const r = jobs.reports.replica();
    const tags = new Set(['id-churn']);
    const day = new Date(state.now - DAY).toISOString().slice(0, 10);
    const steps = [
      httpOut(r, 'GET', `http://reporting.legacy.internal/reports/${day}/summary`, { dur: 100 }),
      httpOut(r, 'GET', `http://reporting.legacy.internal/reports/${day}/regions/${d.pick(['emea', 'amer', 'apac'])}`, { dur: 100 }),
      db(r, 'postgresql', 'orders', 'SELECT', 'orders', readReplica(tags), { dur: 300 }),
      aws(r, 'S3', 'PutObject', { bucket: 'reports', dur: 100 }),
    ];
    return { tags, root: span('report-builder run', INTERNAL, r.resource, {}, seq(steps, 2, 10)) };
  }

  // ---- schedule ---------------------------------------------------------------------------------
  /** Steady sources: [traces per hour at peak, builder]. */
  const sources = [
    [40, browse],
    [45, productPage],
    [14, checkout],
    [8, accountPage],
    ...Object.entries(AGENTS).map(([a, cfg]) => [cfg.perHour, () => agentRun(a)]),
    ...Object.entries(CERTS).map(([cn, cfg]) => [cfg.perHour, () => certCall(cn)]),
    ...Object.entries(CI).map(([c, cfg]) => [cfg.perHour * 2, () => ciJob(c)]),
    [4, () => crmExport()],
    [6, etlRun],
    [3, reportRun],
  ];
  const newcomers = [
    ['newAgent', 5, () => agentRun('invoice-reader', { w: newAgent, cfg: { tools: ['read_invoice', 'match_po'], model: 'gpt-4o-mini' } })],
    ['newCi', 2, () => ciJob('deploy-search', { w: newCi, cfg: { apps: ['search', 'search-indexer'] } })],
  ];

  /** One-off events: [time, builder, tags added]. */
  const specials = [
    [at.ciEnumeration, () => ciJob('deploy-shop', { enumerate: true })],
    [at.agentFlood, () => agentRun('support-triage', { flood: true })],
    [at.stolenCert, () => certCall('settlement-batch.finance.svc', { attacker: true })],
    [at.stolenCert + 40_000, () => certCall('settlement-batch.finance.svc', { attacker: true })],
    [at.stolenCert + 95_000, () => certCall('settlement-batch.finance.svc', { attacker: true })],
    [at.exfiltration, () => crmExport({ exfiltrate: true })],
    [at.lateral, lateralMovement],
  ];
  // Legitimate bursts over known peers: a flash sale, a hotfix day for the shop's deployer, a backfill.
  for (let i = 0; i < 8 * 30; i++) specials.push([at.flashSale + i * 7_500 + d.int(0, 5000), () => withTag(d.chance(0.5) ? productPage() : browse(), 'burst')]);
  for (let i = 0; i < 10; i++) specials.push([at.ciHotfixBurst + i * 90_000, () => withTag(ciJob('deploy-shop'), 'burst')]);
  for (let i = 0; i < 12; i++) specials.push([at.backfillBurst + i * 45_000, () => withTag(etlRun(), 'burst')]);
  specials.sort((a, b) => a[0] - b[0]);

  function withTag(t, tag) {
    t.tags.add(tag);
    return t;
  }

  /** Applies the changes due by `state.now` (releases, rotations, failovers). */
  function applyChanges() {
    once('storefrontRelease', () => {
      svc.storefront.rollout({ version: '4.13.0' });
      svc.catalog.rollout({ version: '7.0.4' });
    });
    once('nodeRotation', () => {
      for (const w of [svc.storefront, svc.catalog, svc.inventory, svc.orders, svc.payments, svc.notifications, svc.auth]) w.rollout({ subnet: 1 << 8 | 60 });
    });
    once('ordersRelease', () => svc.orders.rollout({ version: '5.2.0' }));
    once('crmExportRelease', () => jobs.crmExport.rollout({ version: '2.1.0' }));
    once('poisonedRelease', () => svc.catalog.rollout({ version: '7.1.0' }));
    once('drFailover', () => svc.inventory.rollout({ cluster: 'prod-eu-2', subnet: 1 << 8 | 90 }));
    if (state.now >= at.drFailover + HOUR && svc.inventory.cluster === 'prod-eu-2') svc.inventory.rollout({ cluster: 'prod-eu-1', subnet: 1 << 8 | 60 });
  }

  /** Tags -> the trace's label: an attack, else a benign challenge, else steady (or learning). */
  function labelOf(tags, t) {
    const attack = [...tags].find((x) => x.startsWith('attack:'));
    if (attack) return { kind: 'attack', name: attack.slice(7) };
    const recent = (name) => t < at[name] + changeWindow;
    if (t < evalStart) return { kind: 'learning', name: 'learning' };
    if (tags.has('burst')) return { kind: 'benign', name: 'legitimate-burst' };
    if (tags.has('retry-storm')) return { kind: 'benign', name: 'retry-storm' };
    if (tags.has('failover')) return { kind: 'benign', name: 'failover' };
    if (tags.has('new-identity')) return { kind: 'benign', name: 'new-identity' };
    // A release is a challenge while it is new: traces that exercise what it changed, for a while.
    if ([...tags].some((x) => x.startsWith('release:') && recent(x.slice(8)))) return { kind: 'benign', name: 'release' };
    if (tags.has('churned') && recent('nodeRotation')) return { kind: 'benign', name: 'replica-churn' };
    if (tags.has('id-churn')) return { kind: 'benign', name: 'id-churn' };
    return { kind: 'benign', name: 'steady' };
  }

  /** The traces of hour `h` (event time order): [{at, label, root}]. */
  function traces(h) {
    const start = T0 + h * HOUR;
    const shape = DIURNAL[h % 24];
    const planned = [];
    for (const [rate, build] of sources) {
      // CI and data jobs run around the clock; people-driven traffic follows the day.
      const n = d.poisson(rate * (build === browse || build === productPage || build === checkout || build === accountPage ? shape : 0.5 + shape / 2));
      for (let i = 0; i < n; i++) planned.push([start + Math.floor(d.next() * HOUR), build, undefined]);
    }
    for (const [name, rate, build] of newcomers) {
      if (start + HOUR <= at[name]) continue;
      for (let i = 0, n = d.poisson(rate); i < n; i++) {
        const t = start + Math.floor(d.next() * HOUR);
        if (t >= at[name]) planned.push([t, build, 'new-identity']);
      }
    }
    for (const [t, build] of specials) if (t >= start && t < start + HOUR) planned.push([t, build, undefined]);
    planned.sort((a, b) => a[0] - b[0]);
    return planned.map(([t, build, tag]) => {
      state.now = t;
      applyChanges();
      const made = build();
      if (tag) made.tags.add(tag);
      if (t >= at.nodeRotation && t < at.nodeRotation + changeWindow && isShop(made.root)) made.tags.add('churned');
      return { at: t, label: labelOf(made.tags, t), root: made.root };
    });
  }

  const isShop = (root) => root.resource['service.namespace'] === 'shop';

  const attacks = [
    { name: 'ci-enumeration', identity: ids.ci('deploy-shop'), at: at.ciEnumeration, what: "a poisoned build step reuses the shop deployer's token to list buckets, roles and policies in 5 other accounts" },
    { name: 'agent-tool-flood', identity: ids.agent('support-triage'), at: at.agentFlood, what: 'a prompt-injected ticket makes the support agent call two tools outside its workflow 80 times (customers, payment methods)' },
    { name: 'stolen-certificate', identity: ids.cert('settlement-batch.finance.svc'), at: at.stolenCert, what: "the settlement batch's client certificate used with curl from another network segment (3 requests)" },
    { name: 'data-exfiltration', identity: 'svc:data/crm-export', at: at.exfiltration, what: 'the CRM export job also uploads to an unfamiliar file-sharing host' },
    { name: 'lateral-movement', identity: 'svc:shop/storefront', at: at.lateral, what: "the storefront's link preview reaches the records API's customer export and the instance metadata credentials" },
    { name: 'poisoned-release', identity: 'svc:shop/catalog', at: at.poisonedRelease, what: 'catalog 7.1.0 rolls out and each new replica calls a new external host' },
  ];
  const challenges = {
    steady: 'normal traffic after learning (diurnal volume, optional calls, cache hits)',
    release: 'new service.version adding endpoints and internal dependencies (storefront -> recommendations, catalog reviews; orders -> fraud-check, cache; crm-export -> schema registry)',
    'retry-storm': 'inventory (45 min) and the payment provider (20 min) answer 5xx, the model providers rate-limit the agents (429, 40 min); callers retry the same call',
    'replica-churn': 'node pool rotation: every shop pod gets a new name, node and /24',
    'id-churn': 'ids in URLs without http.route: user names, order numbers, image digests and upload ids, dates, ticket numbers',
    'new-identity': 'a new AI agent and a new CI deployer appear mid-run',
    'legitimate-burst': "flash sale (about 6x the shop's browsing for 30 min), hotfix day (10 deploys in 15 min), backfill (12 ETL runs in 9 min)",
    failover: "the orders database's read replica fails over to its standby host for 2 h (ETL and reports read there); inventory runs in the DR cluster for 1 h",
  };
  return { hours, evalStart, traces, attacks, challenges, schedule: at };
}
