import { MessageChannel, type MessagePort } from 'node:worker_threads';

/**
 * Releasing buffers that nothing reads any more, so that V8 stops counting their bytes at once.
 *
 * Why: V8 counts the bytes of an isolate's ArrayBuffers (external memory) against the room left
 * below its old generation's limit until a collection finds them dead: a scavenge for a buffer
 * still in the young generation, only a full collection for one whose object was promoted. Under
 * load the main thread made a request body's worth of buffers several times per request (the HTTP
 * parser's chunks, the body moved back from the pipeline thread) and a batch's arrays per batch,
 * ~30 MB/s; the room (~10 MB past the young generation's size) was used up in a few hundred ms, so
 * V8 ran a full collection every ~15k spans (bench/README.md "Main thread request path and journal
 * (issue 19, 2026-12-07, third)"). A detached buffer's bytes leave V8's count the moment it is
 * detached, and its memory is freed once the message carrying it is dropped.
 *
 * How: the buffer is moved (transferred) into a message port whose other end is closed. The
 * message goes nowhere and is dropped with the buffer. `structuredClone(x, { transfer })` also
 * detaches, but it makes the buffer again in this isolate, counted as before; Node 20 has no
 * `ArrayBuffer.prototype.transfer` (V8 11.3).
 */
let sink: MessagePort | undefined;

/**
 * Detaches `buffer` (its views then read as empty) and frees its memory. Call it only on a buffer
 * whose every view is out of use, never on a shared one (a Buffer from the pool, a view into a
 * buffer others read). A SharedArrayBuffer, or a buffer already detached, is left as it is.
 */
export function releaseBuffer(buffer: ArrayBufferLike): void {
  if (!(buffer instanceof ArrayBuffer) || buffer.byteLength === 0) return;
  if (sink === undefined) {
    const channel = new MessageChannel();
    channel.port2.close();
    channel.port1.unref();
    sink = channel.port1;
  }
  sink.postMessage(null, [buffer]);
}

/** Whether `view` spans its whole buffer (nothing else can be in that buffer). */
export function ownsWholeBuffer(view: ArrayBufferView): boolean {
  return view.byteOffset === 0 && view.byteLength === view.buffer.byteLength;
}
