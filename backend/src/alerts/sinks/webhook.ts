import { createHmac, randomUUID } from 'node:crypto';
import { alertmanagerBody, jsonBody, slackBody } from './formats.js';
import { postHttp } from './transport.js';
import { deliveryId, type Sink, type SinkEvent } from './types.js';
import { z } from 'zod';
import { httpUrl, sinkDeliveryFields, sinkHeaders } from './settings.js';

/** Webhook body formats. */
export const WEBHOOK_FORMATS = ['json', 'slack', 'alertmanager'] as const;
export type WebhookFormat = (typeof WEBHOOK_FORMATS)[number];

/** `alerts.sinks[]` entry of a `webhook` sink. */
export const webhookSinkSchema = z
  .object({
    type: z.literal('webhook'),
    ...sinkDeliveryFields,
    /** The URL to POST to. */
    endpoint: httpUrl,
    headers: sinkHeaders,
    /** HMAC-SHA256 secret for the X-Conduct-Signature header. */
    secret: z.string().optional(),
    /** Body format (default `json`). */
    format: z.enum(WEBHOOK_FORMATS).optional(),
  })
  .strict();

/** Header carrying `sha256=<hex HMAC-SHA256 of the exact body>` when a secret is configured. */
export const SIGNATURE_HEADER = 'x-conduct-signature';
/** Header naming the event type: `alert` or `feedback`. */
export const EVENT_HEADER = 'x-conduct-event';
/** Header with the delivery's id, the same on every retry of one delivery, for receivers that dedupe: `<alertId>/<seq>` from the outbox. */
export const DELIVERY_HEADER = 'x-conduct-delivery';

export interface WebhookOptions {
  /** The full URL to POST to. */
  url: string;
  format: WebhookFormat;
  headers: Record<string, string>;
  /** HMAC-SHA256 key for the signature header; no signature when absent. */
  secret?: string;
  timeoutMs: number;
  version: string;
}

export interface PreparedPost {
  body: string;
  headers: Record<string, string>;
}

/** `sha256=` + the hex HMAC-SHA256 of `body` under `secret`. */
export function signBody(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body, 'utf8').digest('hex')}`;
}

/** A JSON POST with signature and delivery headers, prepared once so every retry is identical. */
export function preparePost(body: string, event: SinkEvent, opts: Pick<WebhookOptions, 'headers' | 'secret' | 'version'>): PreparedPost {
  const headers: Record<string, string> = {
    'user-agent': `conduct/${opts.version}`,
    ...opts.headers,
    'content-type': 'application/json',
    [EVENT_HEADER]: event.kind,
    [DELIVERY_HEADER]: event.delivery ? deliveryId(event.delivery) : randomUUID(),
  };
  if (opts.secret) headers[SIGNATURE_HEADER] = signBody(opts.secret, body);
  return { body, headers };
}

/** `webhook`: a JSON POST per alert and per verdict, optionally signed; JSON, Slack or Alertmanager body. */
export function createWebhookSink(opts: WebhookOptions): Sink<PreparedPost> {
  const render = (event: SinkEvent): object =>
    opts.format === 'slack' ? slackBody(event) : opts.format === 'alertmanager' ? alertmanagerBody(event) : jsonBody(event, opts.version);
  return {
    accepts: ['alert', 'feedback'],
    prepare: (event) => preparePost(JSON.stringify(render(event)), event, opts),
    send: (post, signal) => postHttp({ url: opts.url, body: post.body, headers: post.headers, timeoutMs: opts.timeoutMs }, signal),
  };
}
