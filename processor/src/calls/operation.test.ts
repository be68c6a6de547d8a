import { describe, expect, it } from 'vitest';
import type { Attributes } from '@conduct/proto';
import { objectAttrs } from '../keys.js';
import { operationOf, parseQuery, pathOfUrl, protocolOf, templatePath, templateQuery, templateTable, isIdLike, MAX_OPERATION_LENGTH } from './operation.js';
import { peerOf } from './derive.js';

const attrs = (a: Record<string, string | number>) => objectAttrs(Object.assign(Object.create(null) as Attributes, a));
const op = (name: string, a: Record<string, string | number> = {}) => operationOf(name, attrs(a)).operation;

describe('operation templating', () => {
  it('ids, numbers, UUIDs, hex, emails and tokens in paths do not create new operations', () => {
    const paths = [
      '/users/42/orders',
      '/users/1234567/orders',
      '/users/550e8400-e29b-41d4-a716-446655440000/orders',
      '/users/9f86d081884c7d65/orders',
      '/users/alice%40example.com/orders',
      '/users/alice@example.com/orders',
      '/users/aB3dE5fG7hJ9kL1mN/orders',
      '/users/usr_20240101/orders?page=2',
      '/users/550E8400-E29B-41D4-A716-446655440000/orders',
      '/users/01ARZ3NDEKTSV4RRFFQ69G5FAV/orders',
      '/users/2026-12-06T10:15:00Z/orders',
      '/users/2026-12-06/orders',
      '/users/eyJhbGciOiJIUzI1NiJ9eyJzdWIiOiJhbGljZSJ9SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c/orders',
      '/users/dGhpcy1pcy1hLWN1cnNvci1mb3ItcGFnZS10d28tb2YtdGhl_WHOLE/orders',
    ];
    const ops = new Set(paths.map((p) => op('GET', { 'http.request.method': 'GET', 'url.path': p })));
    expect([...ops]).toEqual(['GET /users/{id}/orders']);
  });

  it('container registry manifests by digest and artifacts by version stay one operation each', () => {
    const digests = ['a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4', 'b'.repeat(64), 'C'.repeat(64)];
    const manifests = new Set(digests.map((d) => op('GET', { 'http.request.method': 'GET', 'url.path': `/v2/team/api/manifests/sha256:${d}` })));
    expect([...manifests]).toEqual(['GET /v2/team/api/manifests/{id}']);
    const versions = ['1.2.3', 'v1.2.4', '2.0.0-rc.1', 'v10.3.0+build.7'];
    const artifacts = new Set(versions.map((v) => op('GET', { 'http.request.method': 'GET', 'url.path': `/artifacts/conduct/${v}/conduct.tgz` })));
    expect([...artifacts]).toEqual(['GET /artifacts/conduct/{id}/conduct.tgz']);
    // API versions and names stay.
    expect(templatePath('/v2/team/api/manifests/latest')).toBe('/v2/team/api/manifests/latest');
    expect(isIdLike('v2')).toBe(false);
    expect(templatePath('/api/v1.0/orders')).toBe('/api/v1.0/orders');
    expect(isIdLike('GetAccountAuthorizationDetails')).toBe(false);
    expect(isIdLike('ListAttachedRolePoliciesForUserInAccount')).toBe(false);
  });

  it('keeps words that are not ids', () => {
    expect(templatePath('/api/v1/orderservice/order/tickets')).toBe('/api/v1/orderservice/order/tickets');
    expect(templatePath('/api/v1/trainservice/trains/byNames')).toBe('/api/v1/trainservice/trains/byNames');
    expect(isIdLike('getTicketListByDateAndTripId')).toBe(false);
    expect(isIdLike('order-service-v2')).toBe(false);
  });

  it('the route wins over the path', () => {
    expect(op('GET', { 'http.request.method': 'GET', 'http.route': '/users/:id', 'url.path': '/users/42' })).toBe('GET /users/:id');
  });

  it('reads old and new HTTP names, and strips the query of http.target', () => {
    expect(op('x', { 'http.method': 'DELETE', 'http.target': '/carts/77?force=1' })).toBe('DELETE /carts/{id}');
    expect(op('x', { 'http.request.method': 'put', 'url.full': 'https://h/items/3#frag' })).toBe('PUT /items/{id}');
    expect(op('x', { 'http.request.method': 'BREW', 'url.path': '/pot' })).toBe('_OTHER /pot');
  });

  it('rpc, db and messaging operations', () => {
    expect(op('x', { 'rpc.service': 'shop.Cart', 'rpc.method': 'Add' })).toBe('shop.Cart/Add');
    expect(op('x', { 'db.operation.name': 'SELECT', 'db.collection.name': 'orders' })).toBe('SELECT orders');
    expect(op('x', { 'db.statement': 'update accounts set balance = 1 where id = 2' })).toBe('UPDATE accounts');
    expect(op('x', { 'db.query.text': '/* hint */ INSERT INTO "Orders" (a) VALUES (1)' })).toBe('INSERT Orders');
    expect(op('x', { 'messaging.operation.type': 'receive', 'messaging.destination.name': 'reply-550e8400-e29b-41d4-a716-446655440000' })).toBe('receive {id}');
    expect(op('x', { 'messaging.operation': 'publish', 'messaging.destination': 'orders' })).toBe('publish orders');
  });

  it('database operations carry no literals and no dated or numbered table names', () => {
    const db = (a: Record<string, string | number>, name = 'x') => op(name, { 'db.system.name': 'postgresql', ...a });
    // db.query.summary (semconv 1.30+) when there is no db.operation.name.
    expect(db({ 'db.query.summary': 'SELECT orders', 'db.query.text': 'SELECT * FROM orders WHERE id = 7' })).toBe('SELECT orders');
    expect(db({ 'db.operation.name': 'SELECT', 'db.collection.name': 'events_20261206' })).toBe('SELECT events_{id}');
    expect(db({ 'db.query.text': "SELECT * FROM tenant_42.orders WHERE email = 'a@b.c'" })).toBe('SELECT tenant_{id}.orders');
    expect(db({ 'db.statement': 'DELETE FROM logs_2026_12_06 WHERE ts < 1765000000' })).toBe('DELETE logs_{id}_{id}_{id}');
    // A span named after its statement (older instrumentations): keyword and table, not the literals.
    const names = ["SELECT * FROM users WHERE name = 'alice'", "SELECT * FROM users WHERE name = 'bob' AND id IN (1, 2, 3)"];
    expect(new Set(names.map((n) => db({}, n)))).toEqual(new Set(['SELECT users']));
    expect(db({}, "CALL refresh_user('alice', 42)")).toBe('CALL');
  });

  it('query texts lose their literals: strings, numbers, hex, dollar quotes and IN lists', () => {
    expect(templateQuery("SELECT * FROM t WHERE a = 'it''s' AND b = -4.5e3 AND c IN (1, 2, 3) AND d = 0x1F AND e = X'ab' AND f = E'x\\'y'")).toBe(
      'SELECT * FROM t WHERE a = ? AND b = ? AND c IN (?) AND d = ? AND e = ? AND f = ?',
    );
    expect(templateQuery("INSERT INTO t2 (a, \"col1\") VALUES ($1, 'x'), ($2, $$body 7$$)")).toBe('INSERT INTO t2 (a, "col1") VALUES ($1, ?), ($2, ?)');
    expect(templateQuery("SELECT a FROM t WHERE b IN ('x', 'y')")).toBe('SELECT a FROM t WHERE b IN (?)');
    expect(templateTable('orders')).toBe('orders');
    expect(templateTable('shard_0007.user-events')).toBe('shard_{id}.user-events');
  });

  it('rpc names with ids in them are templated like paths', () => {
    expect(op('x', { 'rpc.system': 'grpc', 'rpc.service': 'shop.Cart', 'rpc.method': 'Add' })).toBe('shop.Cart/Add');
    // Package-qualified names are names, whatever their mix of case and digits.
    expect(op('x', { 'rpc.system': 'grpc', 'rpc.service': 'shop.catalog.v1.Catalog', 'rpc.method': 'GetProduct' })).toBe('shop.catalog.v1.Catalog/GetProduct');
    expect(op('x', { 'rpc.system': 'grpc', 'rpc.service': 'com.example.Mailbox', 'rpc.method': 'alice@example.com' })).toBe('com.example.Mailbox/{id}');
    expect(op('x', { 'rpc.system': 'grpc', 'rpc.service': 'shards.s20261206.Store', 'rpc.method': 'Put' })).toBe('shards.{id}.Store/Put');
    expect(op('x', { 'rpc.system': 'jsonrpc', 'rpc.method': 'jobs/550e8400-e29b-41d4-a716-446655440000/cancel' })).toBe('jobs/{id}/cancel');
    expect(op('x', { 'rpc.system': 'connect_rpc', 'rpc.service': 'tenants/20261206', 'rpc.method': 'Get' })).toBe('tenants/{id}/Get');
  });

  it('falls back to the templated span name', () => {
    expect(op('GET /orders/12345')).toBe('GET /orders/{id}');
    expect(op('process job 998877')).toBe('process job {id}');
    expect(op('SELECT ts.orders')).toBe('SELECT ts.orders');
  });

  it('bounds the operation length', () => {
    expect(op('x'.repeat(5000)).length).toBe(MAX_OPERATION_LENGTH);
    expect(parseQuery('SELECT ' + 'a,'.repeat(10000) + ' FROM t')).toEqual({ keyword: 'SELECT' });
  });
});

describe('key letters', () => {
  it('an operation, protocol and peer read with the span key letters equal those read without', () => {
    const spans: Record<string, string | number>[] = [
      { 'http.request.method': 'GET', 'http.route': '/orders/{id}', 'http.response.status_code': 200 },
      { 'http.method': 'post', 'http.url': 'https://api.example.com/v1/items/42?x=1' },
      { 'url.full': 'http://10.0.0.1:8080/a/b' },
      { 'rpc.system': 'grpc', 'rpc.service': 'shop.Cart', 'rpc.method': 'Add', 'server.address': 'cart', 'server.port': 50051 },
      { 'db.system': 'postgresql', 'db.statement': 'SELECT * FROM orders WHERE id = 1', 'db.name': 'shop' },
      { 'db.system.name': 'redis', 'db.operation.name': 'GET', 'db.collection.name': 'sessions' },
      { 'messaging.system': 'kafka', 'messaging.destination.name': 'orders-42', 'messaging.operation.type': 'send' },
      { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'search' },
      { 'peer.service': 'billing', 'Upper.key': 'x', '': 'empty' },
      {},
    ];
    for (const a of spans) {
      const all = attrs(a);
      const letters = all.letters;
      expect(operationOf('span name 123', all, letters)).toEqual(operationOf('span name 123', all));
      expect(protocolOf(all, letters)).toBe(protocolOf(all));
      for (const protocol of ['http', 'db', 'messaging', 'grpc']) expect(peerOf(all, protocol, letters)).toEqual(peerOf(all, protocol));
    }
  });

  it('pathOfUrl finds what the URL expression captures (it is written by hand)', () => {
    const expression = (url: string): string | undefined => {
      const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*([^?#]*)/.exec(url);
      return m ? m[1] || '/' : undefined;
    };
    expect(pathOfUrl('https://u@shop.example:8443/orders/42?x=1#top')).toBe('/orders/42');
    expect(pathOfUrl('http://shop.example')).toBe('/');
    expect(pathOfUrl('/orders/42')).toBeUndefined();
    expect(pathOfUrl(undefined)).toBeUndefined();
    // Generated URLs from characters that matter to the expression (seeded, so the same every run).
    const alphabet = ['a', 'Z', '1', '+', '.', '-', ':', '/', '?', '#', '@', ' ', '[', '%', '\u00e9', '\u0000'];
    const prefixes = ['http://', 'a+b.c-d://', '', 'ht tp://', 'h:/', '1x://'];
    let seed = 42;
    const next = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) % n;
    for (let i = 0; i < 20_000; i++) {
      let url = i % 3 === 0 ? alphabet[next(alphabet.length)]! : '';
      url += prefixes[i % prefixes.length]!;
      for (let k = next(12); k > 0; k--) url += alphabet[next(alphabet.length)]!;
      expect(pathOfUrl(url), url).toBe(expression(url));
    }
  });
});
