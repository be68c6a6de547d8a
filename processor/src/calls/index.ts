export { deriveTrace, deriveItems, deriveInto, settleRemembered, chainsOf, peerOf, hostOfUrl, UNINSTRUMENTED_CALLER, UNKNOWN_PEER, TOOL_PEER_PREFIX, BOUNDARY_IDENTITY } from './derive.js';
export type { DerivedTrace, DeriveOptions, RememberedClient, TraceItems } from './derive.js';
export type { SpanItems } from './trace-table.js';
export { CallTable } from './call-table.js';
export { operationOf, protocolOf, templatePath, templateWords, isIdLike, parseQuery, pathOfUrl, MAX_OPERATION_LENGTH, ID_PLACEHOLDER } from './operation.js';
export type { Operation, OperationSource } from './operation.js';
export { isPrivateHost, networkOf, bareHost, INTERNAL_DNS_SUFFIXES } from './address.js';
export { orderCalls, parentsFromCalls, MAX_ANCESTRY_DEPTH } from './order.js';
export type { ParentOf } from './order.js';
export {
  createPathParameterLearner,
  applyPathParameters,
  PARAM_PLACEHOLDER,
  DEFAULT_PARAM_THRESHOLD,
  DEFAULT_MAX_PARAM_GROUPS,
  DEFAULT_MAX_PARAMETERS,
} from './path-params.js';
export type { LearnedPathParameter, PathParameterStore, PathParameterOptions, PathParameterStats, PathParameterLearner } from './path-params.js';
