export * from './model.js';
export { decodeTracesRequest } from './wire-scanner.js';
export { decodeTracesRequestJson } from './json-decoder.js';
export {
  RETRY_INFO_TYPE_URL,
  encodeExportTraceResponse,
  encodeRpcStatus,
  exportTraceResponseJson,
  rpcStatusJson,
  type ExportOutcome,
  type ExportTraceResponseJson,
  type RpcStatusInput,
  type RpcStatusJson,
} from './responses.js';
export {
  decodeLogsRequest,
  decodeTracesRequestFull,
  encodeLogsRequest,
  encodeLogsResponse,
  encodeTracesRequest,
  type ExportLogsServiceRequest,
  type ExportTraceServiceRequest,
} from './messages.js';
export { google, opentelemetry } from '../generated/otlp.js';
export { decodeTracesRequestColumns } from './column-scanner.js';
export { clampInt8, ColumnAttrs, ColumnsBuilder, columnsFromData, hexInto, ID_BYTES_PER_SPAN, identityRefs, mixWord, ObjectAttrs, PARENT_ID_AT, SPAN_ID_AT, SpanColumns, type AttrReader, type IndexColumn, type SpanView } from './columns.js';
export { ALL_LETTERS, attributeKeyId, attributeKeyName, knownAttributeKeyId, letterOf, PREFIXED, PRESENCE_KEY_ID } from './key-ids.js';
