// gRPC in the demo: the catalog service of services/catalog.proto, its server helpers and a small
// promise-based client. `@grpc/grpc-js` is taken from `nodeGrpc()` (telemetry.mjs) so that the
// official gRPC instrumentation sees it: client and server spans then carry `rpc.system=grpc`,
// `rpc.service` and `rpc.method`, and conduct names the call `<service>/<method>`.
import { fileURLToPath } from 'node:url';
import protoLoader from '@grpc/proto-loader';
import { CALL_TIMEOUT_MS, MAX_BODY_BYTES } from './lib.mjs';
import { nodeGrpc } from './telemetry.mjs';

/** The catalog's service definition. */
export const CATALOG_PROTO = fileURLToPath(new URL('./catalog.proto', import.meta.url));
/** Fully qualified name of the catalog service (the `rpc.service` of its spans). */
export const CATALOG_SERVICE = 'shop.catalog.v1.Catalog';
/** Deadline of one gRPC call. */
export const GRPC_DEADLINE_MS = CALL_TIMEOUT_MS;
/** Largest gRPC message sent or received, either side. */
export const GRPC_MAX_MESSAGE_BYTES = MAX_BODY_BYTES;

const CHANNEL_OPTIONS = {
  'grpc.max_receive_message_length': GRPC_MAX_MESSAGE_BYTES,
  'grpc.max_send_message_length': GRPC_MAX_MESSAGE_BYTES,
};

let catalogPackage;

/** The loaded `shop.catalog.v1` package: `Catalog` is a client constructor with a `service`. */
function catalogV1() {
  if (!catalogPackage) {
    const definition = protoLoader.loadSync(CATALOG_PROTO, { keepCase: false, longs: String, enums: String, defaults: true });
    catalogPackage = nodeGrpc().loadPackageDefinition(definition).shop.catalog.v1;
  }
  return catalogPackage;
}

/** An error answered with a gRPC status code (`nodeGrpc().status`). */
export class GrpcError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/**
 * Adapts `async (request, call) => response` to a grpc-js unary handler: a GrpcError is answered
 * with its code, anything else with INTERNAL (its message is not sent).
 */
function unary(fn) {
  const { status } = nodeGrpc();
  return (call, callback) => {
    Promise.resolve()
      .then(() => fn(call.request ?? {}, call))
      .then(
        (response) => callback(null, response),
        (err) => callback(err instanceof GrpcError ? { code: err.code, details: err.message } : { code: status.INTERNAL, details: 'internal error' }),
      );
  };
}

/**
 * Starts a gRPC server for the catalog on 127.0.0.1 (plaintext: an in-cluster hop) and resolves
 * with `{server, port}`. `handlers` holds `listProducts(request)` and `getProduct(request)`.
 */
export async function serveCatalog(handlers) {
  const grpc = nodeGrpc();
  const server = new grpc.Server(CHANNEL_OPTIONS);
  server.addService(catalogV1().Catalog.service, {
    listProducts: unary(handlers.listProducts),
    getProduct: unary(handlers.getProduct),
  });
  const port = await new Promise((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound)));
  });
  return { server, port };
}

/**
 * A catalog client for `address` (`host:port`). Each method resolves with the response message or
 * rejects with the grpc-js error (its `code` is the gRPC status).
 */
export function catalogClient(address) {
  const grpc = nodeGrpc();
  const client = new (catalogV1().Catalog)(address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
  const call = (method, request) =>
    new Promise((resolve, reject) => {
      client[method](request, { deadline: Date.now() + GRPC_DEADLINE_MS }, (err, response) => (err ? reject(err) : resolve(response)));
    });
  return {
    listProducts: () => call('listProducts', {}),
    getProduct: (id) => call('getProduct', { id }),
    close: () => client.close(),
  };
}
