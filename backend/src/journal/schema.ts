/**
 * How a journaled request's body is kept:
 * - `protobuf`: the OTLP/protobuf request body as received (after gzip);
 * - `json`: the OTLP/JSON request body as received (after gzip);
 * - `decoded`: the decoded request (TracesRequestData) as JSON text, for requests handed in
 *   without their body, and the only form the oldest SQLite journals hold.
 */
export type JournalBodyFormat = (typeof JOURNAL_BODY_FORMATS)[number];

/** Every JournalBodyFormat; a log record stores its format as the index here (log.ts). */
export const JOURNAL_BODY_FORMATS = ['protobuf', 'json', 'decoded'] as const;
