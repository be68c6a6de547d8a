/**
 * Issue 5 end to end: a conduct fed real OTLP through the official exporter, its web UI driven in
 * Debian's Chromium. The identities list, the identity graph, an alert with feedback, live updates,
 * the token prompt, and span data holding HTML and script URLs that must stay text.
 */
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { SpanKind, type Span } from '@opentelemetry/api';
import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { safeHttpUrl } from '../backend/ui/src/format.js';
import { ensureUiBuilt, launchBrowser, watchedPage, type PageWatch } from './support/browser.js';
import { sendShopTrace } from './support/shop.js';
import { startTestConduct, type TestConduct } from './support/conduct.js';
import { exporterFor, TestService } from './support/otel.js';

const SCREENSHOTS = fileURLToPath(new URL('../docs/screenshots/', import.meta.url));
const TRACE_URL = 'http://tracing.example.test/trace/{traceId}';
const CHECKOUT = 'svc:shop/checkout';

// Hostile span data: each must appear as text, none may run or become an element or a link.
const IMG = '<img src=x onerror=alert(1)>';
const SCRIPT = '<script>alert(2)</script>';
const JS_URL = 'javascript:alert(3)';
const HOSTILE_AGENT = `agent:${IMG}`;

interface ApiAlert {
  id: string;
  identity: string;
  detector: string;
  title: string;
  explanation: string;
  traceId: string;
  spanIds: string[];
  status: string;
  links: { trace: string };
}

/** One checkout trace at event time `t`; `extraPeer` adds a call to a host never seen before. */
async function sendCheckout(conduct: TestConduct, t: number, extraPeer?: string): Promise<string> {
  return (await sendShopTrace(conduct, { t, extraPeer })).traceId;
}

/** An agent whose id, name, span names and attributes are hostile markup and script URLs. */
async function sendHostileAgent(conduct: TestConduct, t: number): Promise<string> {
  const agent = new TestService({ 'service.name': 'evil-agent', 'service.namespace': 'agents' }, exporterFor('http-proto', conduct));
  const invoke = agent.start(`invoke_agent ${SCRIPT}`, {
    kind: SpanKind.INTERNAL,
    startMs: t,
    attributes: { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.id': IMG, 'gen_ai.agent.name': SCRIPT },
  });
  const tool = agent.start(`execute_tool ${IMG}`, {
    kind: SpanKind.INTERNAL,
    parent: invoke,
    startMs: t + 1,
    attributes: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': JS_URL },
  });
  const get = agent.start(SCRIPT, {
    kind: SpanKind.CLIENT,
    parent: tool,
    startMs: t + 2,
    attributes: { 'http.request.method': 'GET', 'url.full': JS_URL, 'server.address': IMG, 'db.collection.name': SCRIPT },
  });
  get.end(t + 5);
  tool.end(t + 6);
  invoke.end(t + 7);
  await agent.shutdown();
  return invoke.spanContext().traceId;
}

/** Fails with every CSP violation, dialog and uncaught error the page saw. */
async function expectClean(w: PageWatch): Promise<void> {
  expect(await w.cspViolations()).toEqual([]);
  expect(w.consoleErrors.filter((m) => /Content Security Policy/i.test(m))).toEqual([]);
  expect(w.dialogs).toEqual([]);
  expect(w.pageErrors).toEqual([]);
}

describe('web UI in a real browser', () => {
  let conduct: TestConduct;
  let browser: Browser;
  let context: BrowserContext;
  let anomalyTrace: string;
  let hostileTrace: string;
  const t0 = Date.now() - 60 * 60_000;

  beforeAll(async () => {
    ensureUiBuilt();
    mkdirSync(SCREENSHOTS, { recursive: true });
    conduct = await startTestConduct({
      learning: { minCalls: 10, period: '5m' },
      alerts: { traceUrl: TRACE_URL },
      policies: [
        { match: 'agent:*', purpose: 'Answers support tickets', expectedPeers: ['shop/orders'] },
        {
          match: CHECKOUT,
          purpose: 'Takes payment for orders',
          expectedPeers: ['shop/*', 'postgresql/*'],
          approvedTargets: ['orders'],
          allowedRegions: ['eu-west-1'],
        },
      ],
    });
    // A baseline: eight checkout traces over eight minutes of event time...
    for (let i = 0; i < 8; i++) await sendCheckout(conduct, t0 + i * 60_000);
    await conduct.flush();
    // ...then checkout uploads to a host it never contacted, and the hostile agent acts.
    anomalyTrace = await sendCheckout(conduct, t0 + 15 * 60_000, 'exfil.example.com');
    hostileTrace = await sendHostileAgent(conduct, t0 + 15 * 60_000);
    await conduct.flush();
    browser = await launchBrowser();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  });

  afterAll(async () => {
    await browser?.close();
    await conduct?.dispose();
  });

  it('serves the UI with a strict Content-Security-Policy', async () => {
    const res = await fetch(`${conduct.api}/`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('<div id="app">');
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
  });

  it('lists the identities and draws the graph of the one clicked', async () => {
    const w = await watchedPage(context);
    const { page } = w;
    await page.goto(`${conduct.api}/`);
    const row = page.locator(`tr[data-identity="${CHECKOUT}"]`);
    await row.waitFor();
    await expect.poll(() => page.locator('[data-testid=identities] tbody tr').count()).toBeGreaterThanOrEqual(3);
    expect(await page.locator('[data-testid=identities]').innerText()).toContain('svc:shop/web');

    // Sortable: by calls, most first, then (a second click) fewest first; ties by id.
    const listed = await conduct.get<{ identities: { id: string; calls: number }[] }>('/api/v1/identities');
    const byCalls = [...listed.body.identities].sort((a, b) => b.calls - a.calls || b.id.localeCompare(a.id)).map((i) => i.id);
    const shownOrder = () => page.locator('[data-testid=identities] tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-identity')));
    await page.getByRole('button', { name: 'calls' }).click();
    await expect.poll(shownOrder).toEqual(byCalls);
    await page.getByRole('button', { name: 'calls' }).click();
    await expect.poll(shownOrder).toEqual([...byCalls].reverse());

    // The search box filters by id.
    await page.fill('input[type=search]', 'checkout');
    await expect.poll(() => page.locator('[data-testid=identities] tbody tr').count()).toBe(1);

    await row.getByRole('link', { name: CHECKOUT }).click();
    await page.waitForURL(`**/identities/${encodeURIComponent(CHECKOUT)}`);
    await page.waitForFunction(() => Boolean((window as { __conductGraph?: unknown }).__conductGraph));

    const drawn = await page.evaluate(() => (window as unknown as { __conductGraph: { nodes: string[] } }).__conductGraph.nodes);
    expect(await page.locator('[data-testid=graph] g.gnode').count()).toBe(drawn.length);
    const graph = await conduct.get<{ nodes: { id: string; label?: string }[]; edges: { from: string; to: string }[] }>(
      `/api/v1/identities/${encodeURIComponent(CHECKOUT)}/graph`,
    );
    expect(graph.status).toBe(200);
    // Every node the API returned is drawn, and they include the identity's learned peers.
    expect(drawn).toEqual(expect.arrayContaining(graph.body.nodes.map((n) => n.id)));
    const names = graph.body.nodes.map((n) => `${n.id} ${n.label ?? ''}`).join('\n');
    expect(names).toMatch(/payments/);
    expect(names).toMatch(/postgresql/);
    expect(drawn.length).toBeGreaterThanOrEqual(3);
    // The upload to a never-seen host is in the graph only through its alert: drawn dashed red.
    const exfil = page.locator('g.gedge.alert-only[data-to="exfil.example.com"]');
    await exfil.waitFor();
    const line = await exfil.locator('path.line').evaluate((el) => {
      const cs = getComputedStyle(el);
      return { dash: cs.strokeDasharray, color: cs.stroke };
    });
    expect(line).toEqual({ dash: expect.stringMatching(/^\d/), color: 'rgb(214, 69, 69)' });
    expect(await page.locator('g.gnode.alert-only[data-node-id="exfil.example.com"]').count()).toBe(1);

    // Recent chains are drawn as timelines, the identity's alerts listed beside its context.
    await page.locator('[data-testid=chain]').first().waitFor();
    await page.locator('[data-testid=alerts] tbody tr').first().waitFor();
    expect(await page.locator('main').innerText()).toContain('Takes payment for orders');
    await page.screenshot({ path: `${SCREENSHOTS}identity.png`, fullPage: true });
    await expectClean(w);
    await page.close();
  });

  it('shows an alert with its explanation, chain and trace link, and records feedback', async () => {
    const list = await conduct.get<{ alerts: ApiAlert[] }>(`/api/v1/alerts?identity=${encodeURIComponent(CHECKOUT)}`);
    expect(list.status).toBe(200);
    const alert = list.body.alerts.find((a) => a.detector === 'new-peer') ?? list.body.alerts[0];
    expect(alert, 'checkout contacting a new external host raises an alert').toBeDefined();
    expect(alert!.traceId).toBe(anomalyTrace);

    const w = await watchedPage(context);
    const { page } = w;
    // Two clicks from the alerts list to the trace: the alert, then its trace link.
    await page.goto(`${conduct.api}/alerts`);
    await page.locator(`tr[data-alert-id="${alert!.id}"] a`, { hasText: alert!.title }).click();
    await page.waitForURL(`**/alerts/${encodeURIComponent(alert!.id)}`);

    await expect.poll(() => page.getByTestId('explanation').innerText()).toBe(alert!.explanation);
    expect(await page.getByTestId('alert-title').innerText()).toBe(alert!.title);
    const link = page.getByTestId('trace-link');
    expect(await link.getAttribute('href')).toBe(TRACE_URL.replace('{traceId}', anomalyTrace));
    expect(await link.getAttribute('rel')).toContain('noopener');
    // The offending step of the chain is highlighted.
    await expect.poll(() => page.getByTestId('offending-step').getAttribute('data-span-id')).toBe(alert!.spanIds[0]);
    expect(await page.getByTestId('offending-step').innerText()).toContain('exfil.example.com');
    expect(await page.getByTestId('alert-status').innerText()).toBe('open');
    await page.screenshot({ path: `${SCREENSHOTS}alert.png`, fullPage: true });

    await page.getByRole('button', { name: 'Malicious' }).click();
    await expect.poll(() => page.getByTestId('alert-status').innerText()).toBe('malicious');
    const after = await conduct.get<ApiAlert>(`/api/v1/alerts/${encodeURIComponent(alert!.id)}`);
    expect(after.body.status).toBe('malicious');

    // The trace id opens conduct's trace page: every identity's chain in that trace, in time order.
    await page.getByRole('link', { name: anomalyTrace, exact: true }).first().click();
    await page.waitForURL(`**/traces/${anomalyTrace}`);
    await page.locator('[data-testid=chain]').first().waitFor();
    const trace = await conduct.get<{ chains: { identity: string; calls: { startMs: number }[] }[] }>(`/api/v1/traces/${anomalyTrace}`);
    const started = (c: { calls: { startMs: number }[] }) => Math.min(...c.calls.map((x) => x.startMs));
    const inTimeOrder = [...trace.body.chains].sort((a, b) => started(a) - started(b)).map((c) => c.identity);
    expect(inTimeOrder).toEqual(expect.arrayContaining(['svc:shop/web', CHECKOUT]));
    await expect.poll(() => page.locator('[data-testid=chain] .chain-head a').allInnerTexts()).toEqual(inTimeOrder);
    await expectClean(w);
    await page.close();
  });

  it('shows new alerts without a reload', async () => {
    const w = await watchedPage(context);
    const { page } = w;
    await page.goto(`${conduct.api}/alerts`);
    await page.locator('[data-testid=alerts] tbody tr').first().waitFor();
    const before = await conduct.get<{ alerts: ApiAlert[] }>('/api/v1/alerts');
    const known = new Set(before.body.alerts.map((a) => a.id));

    const trace = await sendCheckout(conduct, t0 + 20 * 60_000, 'second-exfil.example.net');
    await conduct.flush();
    const now = await conduct.get<{ alerts: ApiAlert[] }>(`/api/v1/alerts?identity=${encodeURIComponent(CHECKOUT)}`);
    const fresh = now.body.alerts.find((a) => !known.has(a.id) && a.traceId === trace);
    expect(fresh, 'a second new peer raises a new alert').toBeDefined();
    await page.locator(`tr[data-alert-id="${fresh!.id}"]`).waitFor({ timeout: 15_000 });
    await expectClean(w);
    await page.close();
  });

  it('renders hostile span data as text and runs none of it', async () => {
    const w = await watchedPage(context);
    const { page } = w;
    const scripts = () => page.evaluate(() => [...document.scripts].map((s) => s.src || 'inline'));
    const html = () => page.evaluate(() => document.documentElement.outerHTML);

    await page.goto(`${conduct.api}/`);
    await page.locator(`tr[data-identity="${HOSTILE_AGENT}"]`).waitFor();
    expect(await page.locator('[data-testid=identities]').innerText()).toContain(HOSTILE_AGENT);
    const scriptsAtStart = await scripts();

    await page.getByRole('link', { name: HOSTILE_AGENT }).click();
    await page.getByTestId('identity-id').waitFor();
    expect(await page.getByTestId('identity-id').innerText()).toBe(HOSTILE_AGENT);
    await page.locator('[data-testid=chain]').first().waitFor();
    const identityText = await page.locator('main').innerText();
    expect(identityText).toContain(SCRIPT);

    await page.goto(`${conduct.api}/traces/${hostileTrace}`);
    await page.locator('[data-testid=chain]').first().waitFor();
    const traceText = await page.locator('main').innerText();
    expect(traceText).toContain(HOSTILE_AGENT);
    expect(traceText).toContain(JS_URL);

    // The policy detector fires on the agent's first call; its alert page shows the same text safely.
    const alerts = await conduct.get<{ alerts: ApiAlert[] }>(`/api/v1/alerts?identity=${encodeURIComponent(HOSTILE_AGENT)}`);
    expect(alerts.body.alerts.length, 'a policy alert for the hostile agent').toBeGreaterThan(0);
    await page.goto(`${conduct.api}/alerts/${encodeURIComponent(alerts.body.alerts[0]!.id)}`);
    await page.getByTestId('explanation').waitFor();
    await page.locator('[data-testid=chain]').first().waitFor();

    for (const p of [page]) {
      expect(await p.locator('img').count()).toBe(0);
      expect(await scripts()).toEqual(scriptsAtStart);
      expect(await p.locator('a[href^="javascript:" i]').count()).toBe(0);
      expect(await html()).not.toContain(IMG);
    }
    await expectClean(w);
    await page.close();
  });

  it('asks once for the API token and keeps it for the session', async () => {
    const guarded = await startTestConduct({ api: { token: 'ui-test-token' } });
    const ctx = await browser.newContext();
    try {
      const w = await watchedPage(ctx);
      const { page } = w;
      await page.goto(`${guarded.api}/`);
      await page.locator('input[name=token]').fill('wrong');
      await page.keyboard.press('Enter');
      await page.getByRole('alert').filter({ hasText: 'not accepted' }).waitFor();
      await page.locator('input[name=token]').fill('ui-test-token');
      await page.keyboard.press('Enter');
      await page.getByTestId('identities').waitFor();
      expect(await page.evaluate(() => sessionStorage.getItem('conduct.token'))).toBe('ui-test-token');
      await page.reload();
      await page.getByTestId('identities').waitFor();
      expect(await page.locator('input[name=token]').count()).toBe(0);
      await expectClean(w);
    } finally {
      await ctx.close();
      await guarded.dispose();
    }
  });

  it('links to the trace only through http and https URLs', () => {
    expect(safeHttpUrl('https://jaeger.example/trace/abc')).toBe('https://jaeger.example/trace/abc');
    expect(safeHttpUrl('http://localhost:16686/trace/abc')).toBe('http://localhost:16686/trace/abc');
    expect(safeHttpUrl(JS_URL)).toBeUndefined();
    expect(safeHttpUrl(' JavaScript:alert(1)')).toBeUndefined();
    expect(safeHttpUrl('data:text/html,<script>alert(1)</script>')).toBeUndefined();
    expect(safeHttpUrl('/relative/trace')).toBeUndefined();
  });
});
