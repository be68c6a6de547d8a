import { SpanKind, type Span } from '@opentelemetry/api';
import { exporterFor, TestService, type Transport } from './otel.js';

export interface ShopTraceOptions {
  /** Event time of the trace's first span, ms since the epoch. */
  t: number;
  transport?: Transport;
  /** `enduser.id` the payments server records for checkout's call (the callee-authenticated principal). */
  paymentsPrincipal?: string;
  /** Adds a call from checkout to this host, never seen before (an exfiltration step). */
  extraPeer?: string;
}

export interface ShopTrace {
  traceId: string;
  spans: { root: Span; toCheckout: Span; checkoutServer: Span; db: Span; toPayments: Span; paymentsServer: Span };
}

/**
 * One shop trace through the official SDK: web (GET /cart) calls checkout (POST /orders/{id}),
 * which reads postgres (`shop` database, uninstrumented) and calls payments (POST /charge).
 * Each service is its own tracer provider and exporter, as separate processes would be.
 */
export async function sendShopTrace(target: { grpc: string; http: string }, opts: ShopTraceOptions): Promise<ShopTrace> {
  const { t } = opts;
  const svc = (name: string) =>
    new TestService({ 'service.name': name, 'service.namespace': 'shop', 'cloud.region': 'eu-west-1' }, exporterFor(opts.transport ?? 'http-proto', target));
  const web = svc('web');
  const checkout = svc('checkout');
  const payments = svc('payments');
  const end = (span: Span, ms: number) => span.end(t + ms);

  const root = web.start('GET /cart', { kind: SpanKind.SERVER, startMs: t, attributes: { 'http.request.method': 'GET', 'http.route': '/cart' } });
  const toCheckout = web.start('POST', {
    kind: SpanKind.CLIENT,
    parent: root,
    startMs: t + 1,
    attributes: { 'http.request.method': 'POST', 'url.full': 'http://checkout.shop.svc:8080/orders/8812', 'server.address': 'checkout.shop.svc', 'server.port': 8080 },
  });
  const checkoutServer = checkout.start('POST /orders/{id}', {
    kind: SpanKind.SERVER,
    parent: toCheckout,
    startMs: t + 2,
    attributes: { 'http.request.method': 'POST', 'http.route': '/orders/{id}', 'url.path': '/orders/8812' },
  });
  const db = checkout.start('SELECT shop.orders', {
    kind: SpanKind.CLIENT,
    parent: checkoutServer,
    startMs: t + 3,
    attributes: { 'db.system.name': 'postgresql', 'db.namespace': 'shop', 'db.operation.name': 'SELECT', 'db.collection.name': 'orders' },
  });
  end(db, 5);
  const toPayments = checkout.start('POST', {
    kind: SpanKind.CLIENT,
    parent: checkoutServer,
    startMs: t + 6,
    attributes: { 'http.request.method': 'POST', 'url.full': 'http://payments.shop.svc/charge' },
  });
  const paymentsServer = payments.start('POST /charge', {
    kind: SpanKind.SERVER,
    parent: toPayments,
    startMs: t + 7,
    attributes: {
      'http.request.method': 'POST',
      'http.route': '/charge',
      ...(opts.paymentsPrincipal ? { 'enduser.id': opts.paymentsPrincipal } : {}),
    },
  });
  end(paymentsServer, 9);
  end(toPayments, 10);
  if (opts.extraPeer) {
    const out = checkout.start('PUT', {
      kind: SpanKind.CLIENT,
      parent: checkoutServer,
      startMs: t + 11,
      attributes: { 'http.request.method': 'PUT', 'url.full': `https://${opts.extraPeer}/upload/orders.csv`, 'server.address': opts.extraPeer },
    });
    end(out, 40);
  }
  end(checkoutServer, 41);
  end(toCheckout, 42);
  end(root, 43);
  for (const s of [web, checkout, payments]) await s.shutdown(); // shutdown flushes
  return { traceId: root.spanContext().traceId, spans: { root, toCheckout, checkoutServer, db, toPayments, paymentsServer } };
}
