import type { Alert, AlertFinding, Severity } from '../model.js';
import { ATTR, CONDUCT_SERVICE_NAME } from './attributes.js';
import { deliveryId, type DeliveryRef, type SinkEventKind } from './types.js';

/** Longest string attribute value written; alert text is bounded before it leaves the process. */
export const MAX_ATTRIBUTE_CHARS = 8192;

/**
 * OTLP log severity for each alert severity (SeverityNumber ranges: 9-12 INFO, 13-16 WARN,
 * 17-20 ERROR, 21-24 FATAL). `low` sits one step above `info` inside the INFO range.
 */
export const LOG_SEVERITY: Record<Severity, { number: number; text: string }> = {
  info: { number: 9, text: 'INFO' },
  low: { number: 10, text: 'INFO2' },
  medium: { number: 13, text: 'WARN' },
  high: { number: 17, text: 'ERROR' },
  critical: { number: 21, text: 'FATAL' },
};

/**
 * Milliseconds since the epoch (fractional allowed) to nanoseconds. The generated OTLP code keeps
 * 64-bit values as JS numbers: current times keep a precision of a few hundred nanoseconds.
 */
export function msToNanos(ms: number): number {
  return Math.max(0, Math.round(ms * 1e6));
}

/** ISO time to milliseconds; `fallback` when the text is not a date. */
export function isoToMs(iso: string, fallback: number): number {
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? fallback : ms;
}

/** Lower-case hex of exactly `bytes` bytes (and not all zero) to bytes; undefined otherwise. */
export function hexId(hex: unknown, bytes: 8 | 16): Uint8Array | undefined {
  if (typeof hex !== 'string' || hex.length !== bytes * 2 || !/^[0-9a-fA-F]+$/.test(hex) || /^0+$/.test(hex)) return undefined;
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}

export function clip(text: string, max = MAX_ATTRIBUTE_CHARS): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

type AnyValue =
  | { stringValue: string }
  | { intValue: number }
  | { doubleValue: number }
  | { boolValue: boolean }
  | { arrayValue: { values: AnyValue[] } };

export interface KeyValue {
  key: string;
  value: AnyValue;
}

export const str = (key: string, v: string): KeyValue => ({ key, value: { stringValue: clip(v) } });
const int = (key: string, v: number): KeyValue => ({ key, value: { intValue: Math.trunc(v) } });
const dbl = (key: string, v: number): KeyValue => ({ key, value: { doubleValue: v } });
const strs = (key: string, vs: string[]): KeyValue => ({
  key,
  value: { arrayValue: { values: vs.slice(0, 64).map((v) => ({ stringValue: clip(v, 256) })) } },
});

/** Findings of an incident (older alerts without them count as none). */
export function findingsOf(alert: Alert): AlertFinding[] {
  return Array.isArray(alert.findings) ? alert.findings : [];
}

/** One line per finding: `<detector> <severity> <score>: <title>`. */
export function findingLines(alert: Alert): string[] {
  return findingsOf(alert).map((f) => `${String(f.detector)} ${String(f.severity)} ${Number(f.score) || 0}: ${String(f.title)}`);
}

/** The `conduct.*` attributes describing an alert, shared by log records and finding spans. */
export function alertAttributes(alert: Alert, kind: SinkEventKind, delivery?: DeliveryRef): KeyValue[] {
  const attrs = [
    str(ATTR.alertId, String(alert.id)),
    str(ATTR.event, kind),
    str(ATTR.identity, String(alert.identity)),
    str(ATTR.identityKind, String(alert.identityKind ?? '')),
    str(ATTR.detector, String(alert.detector)),
    strs(ATTR.detectors, Array.isArray(alert.detectors) ? alert.detectors.map(String) : [String(alert.detector)]),
    int(ATTR.findingCount, findingsOf(alert).length || 1),
    strs(ATTR.findings, findingLines(alert)),
    str(ATTR.severity, String(alert.severity)),
    dbl(ATTR.score, Number(alert.score) || 0),
    strs(ATTR.techniques, Array.isArray(alert.techniques) ? alert.techniques.map(String) : []),
    str(ATTR.explanation, String(alert.explanation ?? '')),
    str(ATTR.status, String(alert.status)),
    int(ATTR.count, Number(alert.count) || 1),
  ];
  if (alert.links?.trace) attrs.push(str(ATTR.traceLink, alert.links.trace));
  if (delivery) attrs.push(str(ATTR.deliveryId, deliveryId(delivery)), int(ATTR.deliverySeq, delivery.seq));
  if (typeof alert.receivedAt === 'string') attrs.push(str(ATTR.receivedAt, alert.receivedAt));
  return attrs;
}

/** The resource conduct reports itself as. */
export function conductResource(version: string): { attributes: KeyValue[] } {
  return { attributes: [str(ATTR.serviceName, CONDUCT_SERVICE_NAME), str(ATTR.serviceVersion, version)] };
}

/** The instrumentation scope of everything conduct emits. */
export function conductScope(version: string): { name: string; version: string } {
  return { name: CONDUCT_SERVICE_NAME, version };
}
