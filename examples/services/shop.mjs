// Ordinary services of a small shop (storefront -> catalog over gRPC, storefront -> checkout ->
// payments over HTTP), and the ledger, which only talks to workloads that present a client
// certificate (mutual TLS). The ledger records the certificate's subject as `tls.client.subject`
// on its server span.
import { LEDGER_HOST } from './certs.mjs';
import { GrpcError, catalogClient, serveCatalog } from './grpc.mjs';
import { ATTR, HOME_ACCOUNT, HOME_REGION, callJson, createRouter, fail, listen } from './lib.mjs';
import { nodeGrpc, nodeHttp, nodeHttps } from './telemetry.mjs';

const shopResource = (name, namespace = 'shop') => ({
  'service.name': name,
  'service.namespace': namespace,
  'cloud.region': HOME_REGION,
  'cloud.account.id': HOME_ACCOUNT,
  'k8s.cluster.name': 'prod-eu',
});
const agentOf = (name) => `${name}/2.4 node/${process.versions.node}`;

/** Longest product id the catalog accepts. */
export const MAX_PRODUCT_ID_LENGTH = 64;

/**
 * The catalog: products over gRPC (`shop.catalog.v1.Catalog`, services/catalog.proto), product
 * images over plain HTTP (`GET /images/{id}`, which the storefront's link preview fetches).
 */
export const catalog = {
  resource: shopResource('catalog'),
  async start() {
    const { status } = nodeGrpc();
    const rpc = await serveCatalog({
      listProducts: () => ({ products: ['1', '2', '3', '4'].map((id) => ({ id, name: `product ${id}` })) }),
      getProduct: ({ id }) => {
        if (typeof id !== 'string' || !id || id.length > MAX_PRODUCT_ID_LENGTH) throw new GrpcError(status.INVALID_ARGUMENT, 'bad product id');
        return { id, name: `product ${id}`, priceCents: 1999 };
      },
    });
    const router = createRouter().route('GET', '/images/{id}', ({ params }) => ({ id: params.id, url: `/static/${params.id}.png` }));
    return { port: await listen(nodeHttp().createServer(router.handler)), grpcPort: rpc.port };
  },
};

/** The HTTP status the storefront answers when a catalog call fails with this gRPC error. */
function statusOfGrpcError(err) {
  const { status } = nodeGrpc();
  if (err?.code === status.INVALID_ARGUMENT) return 400;
  if (err?.code === status.NOT_FOUND) return 404;
  return 502;
}

/**
 * The storefront. `/preview` fetches a URL to show a link preview; it trusts any URL it is given
 * (a server-side request forgery bug), which the lateral-movement scenario uses.
 */
export const storefront = {
  resource: shopResource('storefront'),
  async start(ctx) {
    const ua = agentOf('storefront');
    // One channel to the catalog for the life of the process, made once its address is known.
    let client;
    const products = async (fn) => {
      client ??= catalogClient(ctx.grpcAddress('catalog'));
      try {
        return await fn(client);
      } catch (err) {
        fail(statusOfGrpcError(err), 'catalog call failed');
      }
    };
    const router = createRouter()
      .route('GET', '/products', () => products((c) => c.listProducts()))
      .route('GET', '/products/{id}', ({ params }) => products((c) => c.getProduct(params.id)))
      .route('GET', '/preview', async ({ query }) => {
        const target = query.get('url') ?? '';
        if (!/^http:\/\/127\.0\.0\.1:\d{1,5}\//.test(target)) fail(400, 'url must be an internal http URL');
        const res = await callJson('GET', target, { userAgent: ua });
        return { status: res.status, preview: JSON.stringify(res.body ?? null).slice(0, 200) };
      })
      .route('POST', '/checkout', async ({ body }) => {
        const res = await callJson('POST', `${ctx.peer('checkout')}/orders`, { body: { cart: body?.cart ?? [] }, userAgent: ua });
        return res.body;
      });
    return { port: await listen(nodeHttp().createServer(router.handler)) };
  },
};

export const checkout = {
  resource: shopResource('checkout'),
  async start(ctx) {
    let orders = 0;
    const router = createRouter().route('POST', '/orders', async () => {
      const order = ++orders;
      const charge = await callJson('POST', `${ctx.peer('payments')}/charges`, { body: { order, amount: 1999 }, userAgent: agentOf('checkout') });
      return { order, charged: charge.status === 200 };
    });
    return { port: await listen(nodeHttp().createServer(router.handler)) };
  },
};

/** Payments: records each charge in the ledger over mutual TLS with its client certificate. */
export const payments = {
  resource: shopResource('payments'),
  async start(ctx) {
    const tls = { ca: ctx.certs.ca, cert: ctx.certs.client.cert, key: ctx.certs.client.key };
    const hosts = new Map([[LEDGER_HOST, '127.0.0.1']]);
    const ledger = (method, path, body) =>
      callJson(method, `https://${LEDGER_HOST}:${ctx.port('ledger')}${path}`, { body, tls, hosts, userAgent: agentOf('payments') });
    const router = createRouter().route('POST', '/charges', async ({ body }) => {
      const account = `acct-${(Number(body?.order) || 0) % 3}`;
      await ledger('GET', `/accounts/${account}/balance`);
      const entry = await ledger('POST', '/entries', { account, amount: Number(body?.amount) || 0 });
      if (entry.status !== 200) fail(502, 'ledger refused the entry');
      return { ok: true };
    });
    return { port: await listen(nodeHttp().createServer(router.handler)) };
  },
};

/** The ledger: an HTTPS service that requires a client certificate from our CA. */
export const ledger = {
  resource: shopResource('ledger', 'finance'),
  async start(ctx) {
    const balances = new Map();
    const router = createRouter({
      authenticate(req, span) {
        const cert = req.socket.getPeerCertificate?.();
        if (!req.socket.authorized || !cert?.subject) fail(401, 'client certificate required');
        const s = cert.subject;
        const subject = ['CN', 'OU', 'O'].filter((k) => s[k]).map((k) => `${k}=${s[k]}`).join(',');
        span?.setAttribute(ATTR.tlsSubject, subject);
        return subject;
      },
    })
      .route('GET', '/accounts/{id}/balance', ({ params }) => ({ account: params.id, balance: balances.get(params.id) ?? 0 }))
      .route('POST', '/entries', ({ body }) => {
        const account = String(body?.account ?? '').slice(0, 64);
        if (!account) fail(400, 'account required');
        balances.set(account, (balances.get(account) ?? 0) + (Number(body?.amount) || 0));
        return { account, balance: balances.get(account) };
      });
    const server = nodeHttps().createServer(
      { cert: ctx.certs.server.cert, key: ctx.certs.server.key, ca: ctx.certs.ca, requestCert: true, rejectUnauthorized: true },
      router.handler,
    );
    return { port: await listen(server) };
  },
};
