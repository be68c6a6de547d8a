// The decode-only ceiling: conduct's own OTLP receivers (gRPC and HTTP, same code and settings as
// `conduct serve`) in front of an ingest that discards what they decoded. Forked by run.mjs;
// prints nothing, answers over IPC: {type: 'ready', grpc, http} once both listen.
//
//   node bench/decode-server.mjs        (standalone: listens on 127.0.0.1:4317 and :4318)
import { Registry } from 'prom-client';
import { DEFAULT_IDENTITY_RULES, DEFAULT_MAX_REQUEST_BYTES, attributeKeepFor, createGrpcReceiver, createHttpReceiver, silentLogger } from '@conduct/processor';

let spans = 0;
/** Decodes (in the receiver) and discards: the ingest only counts. Decodes the attributes conduct's pipeline reads, as `conduct serve` does. */
const discard = {
  keep: attributeKeepFor(DEFAULT_IDENTITY_RULES),
  async accept(data) {
    spans += data.spanCount;
    return { ok: true };
  },
};

const deps = { registry: new Registry(), logger: silentLogger };
const standalone = !process.send;
const grpcReceiver = createGrpcReceiver({ endpoint: standalone ? '127.0.0.1:4317' : '127.0.0.1:0', maxRequestBytes: DEFAULT_MAX_REQUEST_BYTES }, discard, deps);
const httpReceiver = createHttpReceiver({ endpoint: standalone ? '127.0.0.1:4318' : '127.0.0.1:0', maxRequestBytes: DEFAULT_MAX_REQUEST_BYTES }, discard, deps);
const [grpcAddress, httpAddress] = await Promise.all([grpcReceiver.start(), httpReceiver.start()]);

process.on('message', async (msg) => {
  if (msg.cmd === 'stats') process.send({ type: 'stats', spans });
  if (msg.cmd === 'exit') {
    await Promise.all([grpcReceiver.stop(), httpReceiver.stop()]);
    process.exit(0);
  }
});
process.send?.({ type: 'ready', grpc: grpcAddress, http: httpAddress });
