import type { Alert } from '../model.js';
import { clip, findingLines } from './otlp.js';
import { deliveryId, type SinkEvent } from './types.js';

/** `{delivery: {id, seq}}` for an event from the outbox (receivers deduplicate on `id`), else nothing. */
export function deliveryField(event: SinkEvent): { delivery?: { id: string; seq: number } } {
  return event.delivery ? { delivery: { id: deliveryId(event.delivery), seq: event.delivery.seq } } : {};
}

/** The default webhook body: the event type, the alert as the API returns it, the delivery, and conduct's version. */
export function jsonBody(event: SinkEvent, version: string): object {
  return { event: event.kind, alert: event.alert, ...deliveryField(event), source: { product: 'conduct', version } };
}

/** Escapes the three characters Slack's mrkdwn treats as control characters. */
function slackEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A URL as a Slack link target: characters that would end the `<url|label>` form are encoded. */
function slackUrl(url: string): string {
  return url.replace(/[|<> ]/g, (c) => encodeURIComponent(c));
}

const SEVERITY_MARK: Record<string, string> = {
  info: ':information_source:',
  low: ':large_blue_circle:',
  medium: ':large_yellow_circle:',
  high: ':large_orange_circle:',
  critical: ':red_circle:',
};

/** A section listing an incident's findings, one line each, when it has more than one. */
function findingsBlock(a: Alert): object[] {
  const lines = findingLines(a);
  if (lines.length < 2) return [];
  const text = `*Findings (${lines.length})*\n${lines.slice(0, 10).map((l) => `• ${slackEscape(l)}`).join('\n')}`;
  return [{ type: 'section', text: { type: 'mrkdwn', text: clip(text, 2900) } }];
}

/**
 * A Slack-compatible message (incoming webhooks, chat.postMessage): `text` for notifications and
 * Block Kit `blocks` with severity, identity, detector, explanation and the trace link. All text
 * from the alert is escaped and cut to Slack's block limits.
 */
export function slackBody(event: SinkEvent): object {
  const a = event.alert;
  const severity = String(a.severity).toUpperCase();
  const identity = clip(String(a.identity), 500).replace(/`/g, "'");
  const headline =
    event.kind === 'alert'
      ? `[${severity}] ${String(a.title)}`
      : `[${severity}] ${String(a.title)}: marked ${String(a.status)}`;
  const link = a.links?.trace ? `<${slackUrl(a.links.trace)}|Open trace ${String(a.traceId)}>` : `trace ${String(a.traceId)}`;
  const blocks: object[] = [
    { type: 'header', text: { type: 'plain_text', text: clip(headline, 150) } },
    {
      type: 'section',
      fields: [
        { type: 'mrkdwn', text: `*Severity*\n${SEVERITY_MARK[a.severity] ?? ''} ${slackEscape(severity)}` },
        { type: 'mrkdwn', text: `*Identity*\n\`${slackEscape(identity)}\`` },
        { type: 'mrkdwn', text: `*Detector*\n${slackEscape(String(a.detector))}` },
        { type: 'mrkdwn', text: `*Score*\n${Number(a.score) || 0} · status ${slackEscape(String(a.status))}` },
      ],
    },
    ...findingsBlock(a),
    { type: 'section', text: { type: 'mrkdwn', text: clip(slackEscape(String(a.explanation || a.title)), 2900) } },
    { type: 'context', elements: [{ type: 'mrkdwn', text: clip(`${link} · alert ${slackEscape(String(a.id))}`, 2900) }] },
  ];
  return { text: clip(slackEscape(`${headline} (${identity})`), 3000), blocks };
}

/**
 * A body for Prometheus Alertmanager's `POST /api/v2/alerts`: one alert, labelled by alert name,
 * identity, detector and severity. A verdict of `expected` resolves it (endsAt = now); other
 * verdicts re-send it with the new status. Alertmanager resolves alerts that are not re-sent within
 * its `resolve_timeout`, so each alert shows there for that long after its last occurrence.
 */
export function alertmanagerBody(event: SinkEvent, nowMs = Date.now()): object[] {
  const a: Alert = event.alert;
  const entry: Record<string, unknown> = {
    labels: {
      alertname: `conduct-${String(a.detector)}`,
      identity: clip(String(a.identity), 1024),
      detector: String(a.detector),
      severity: String(a.severity),
      alert_id: String(a.id),
    },
    annotations: {
      summary: clip(String(a.title), 1024),
      description: clip(String(a.explanation ?? '')),
      trace: String(a.links?.trace ?? ''),
      trace_id: String(a.traceId),
      status: String(a.status),
      score: String(a.score),
      techniques: Array.isArray(a.techniques) ? a.techniques.join(',') : '',
      detectors: Array.isArray(a.detectors) ? a.detectors.join(',') : String(a.detector),
      findings: clip(findingLines(a).join('\n')),
      ...(event.delivery ? { delivery: deliveryId(event.delivery) } : {}),
    },
    startsAt: new Date(Date.parse(a.firstSeen) || nowMs).toISOString(),
  };
  if (a.links?.trace && /^https?:\/\//.test(a.links.trace)) entry.generatorURL = a.links.trace;
  if (event.kind === 'feedback' && (a.status === 'expected' || a.status === 'superseded')) entry.endsAt = new Date(nowMs).toISOString();
  return [entry];
}
