/**
 * Issue 18 end to end: the views an SRE reaches for, driven in Chromium against a conduct fed real
 * OTLP through the official exporter. A graph of 30 peers and 200 operations stays readable (no
 * label overlaps another), zooms, fits and leads from a peer to its chains; a window is compared
 * with the baseline; a trace shows its span tree and the alerts raised on it; the alerts list
 * filters, sorts and takes verdicts in bulk; tables fit at 1280 and 1440 px. Screenshots of each
 * view are written to docs/screenshots/.
 */
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureUiBuilt, launchBrowser, watchedPage, type PageWatch } from './support/browser.js';
import { startTestConduct, type TestConduct } from './support/conduct.js';
import { sendShopTrace } from './support/shop.js';
import { NEW_EXTERNAL_PEER, REPORTER, sendReporterBaseline, sendReporterChangedHour, sendWideIdentity, widePeer } from './support/sre-traffic.js';

const SCREENSHOTS = fileURLToPath(new URL('../docs/screenshots/', import.meta.url));
const TRACE_URL = 'http://tracing.example.test/trace/{traceId}';
const WIDE = 'svc:load/fanout';
const HOUR = 3_600_000;

interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
  what: string;
}

/** Fails with every CSP violation, dialog and uncaught error the page saw. */
async function expectClean(w: PageWatch): Promise<void> {
  expect(await w.cspViolations()).toEqual([]);
  expect(w.dialogs).toEqual([]);
  expect(w.pageErrors).toEqual([]);
}

/** The rendered boxes of every label on the graph (nodes hold theirs; edge labels are their own). */
function labelBoxes(page: Page): Promise<Box[]> {
  return page.locator('[data-testid=graph] [data-label]').evaluateAll((els) =>
    els.map((el) => {
      const r = el.getBoundingClientRect();
      const what = `${el.getAttribute('data-label')} ${el.closest('[data-node-id]')?.getAttribute('data-node-id') ?? el.closest('[data-edge-id]')?.getAttribute('data-to') ?? ''}`;
      return { x: r.x, y: r.y, width: r.width, height: r.height, what };
    }),
  );
}

function overlapping(boxes: Box[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i]!;
      const b = boxes[j]!;
      if (a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height) out.push(`${a.what} / ${b.what}`);
    }
  }
  return out;
}

/** What the graph component exposes as `window.__conductGraph`. */
interface DrawnGraph {
  nodes: string[];
  edges: { from: string; to: string; calls: number; operations: string[]; alertOnly: boolean; change?: string }[];
}
const drawnGraph = (page: Page) => page.evaluate(() => (window as unknown as { __conductGraph?: DrawnGraph }).__conductGraph);

const zoomOf = async (page: Page) => Number(await page.getByTestId('graph').getAttribute('data-zoom'));

describe('the SRE views in a real browser', () => {
  let conduct: TestConduct;
  let browser: Browser;
  let context: BrowserContext;
  let uploadTrace: string;
  let shopTrace: string;
  // Whole hours back, so the reporter's last hour is one window.
  const t0 = Math.floor((Date.now() - 14 * HOUR) / HOUR) * HOUR;

  beforeAll(async () => {
    ensureUiBuilt();
    mkdirSync(SCREENSHOTS, { recursive: true });
    conduct = await startTestConduct({ learning: { minCalls: 10, period: '30m' }, alerts: { traceUrl: TRACE_URL } });
    await sendWideIdentity(conduct, t0);
    await sendReporterBaseline(conduct, t0);
    await conduct.flush();
    uploadTrace = await sendReporterChangedHour(conduct, t0);
    shopTrace = (await sendShopTrace(conduct, { t: t0 + 3 * HOUR })).traceId;
    await conduct.flush();
    browser = await launchBrowser();
    context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await conduct?.dispose();
  });

  it('draws 30 peers and 200 operations as one labelled edge per peer, in layers, with no label over another', async () => {
    const w = await watchedPage(context);
    const { page } = w;
    await page.goto(`${conduct.api}/identities/${encodeURIComponent(WIDE)}`);
    await page.waitForFunction(() => Boolean((window as { __conductGraph?: unknown }).__conductGraph));
    const drawn = (await drawnGraph(page))!;

    // One edge per (service, peer): 30 peers, their operations summed to 200, each edge labelled with its count.
    const toPeers = drawn.edges.filter((e) => e.from === 'load/fanout' && e.to !== 'load/fanout');
    expect(toPeers).toHaveLength(30);
    expect(toPeers.reduce((n, e) => n + e.operations.length, 0)).toBe(200);
    expect(new Set(toPeers.map((e) => e.to))).toEqual(new Set(Array.from({ length: 30 }, (_, i) => widePeer(i))));
    const label = await page.locator(`g.gedge[data-to="${widePeer(0)}"] .elabel text`).textContent();
    const ops = toPeers.find((e) => e.to === widePeer(0))!.operations.length;
    expect(label).toBe(`${ops} ops · ${2 * ops} calls`);

    // Layers, left to right: the identity, the service it acts through, the peers.
    const xOf = (id: string) => page.locator(`g.gnode[data-node-id="${id}"] rect`).evaluate((el) => el.getBoundingClientRect().x);
    const identityX = await xOf(WIDE);
    const serviceX = await xOf('load/fanout');
    expect(identityX).toBeLessThan(serviceX);
    for (let i = 0; i < 30; i++) expect(await xOf(widePeer(i))).toBeGreaterThan(serviceX);
    // External peers are marked.
    const external = page.locator(`g.gnode[data-node-id="${widePeer(5)}"]`);
    expect(await external.getAttribute('class')).toContain('style-external');
    expect(await external.locator('text').textContent()).toMatch(/^↗ /);

    // No label box intersects another: 32 node labels and 31 edge labels.
    const boxes = await labelBoxes(page);
    expect(boxes.length).toBe(drawn.nodes.length + drawn.edges.length);
    expect(boxes.length).toBeGreaterThanOrEqual(63);
    expect(overlapping(boxes)).toEqual([]);

    // Hovering an edge names its operations; clicking it lists them all in the side panel.
    const edge = page.locator(`g.gedge[data-to="${widePeer(3)}"]`);
    expect(await edge.locator('title').textContent()).toContain('.v1.Records/');
    await edge.locator('.elabel').click();
    const panelOps = page.getByTestId('panel-operations').locator('tbody tr');
    await expect.poll(() => panelOps.count()).toBe(toPeers.find((e) => e.to === widePeer(3))!.operations.length);
    await page.getByTestId('graph-panel').scrollIntoViewIfNeeded();
    await page.locator('section.card').filter({ has: page.getByTestId('graph') }).screenshot({ path: `${SCREENSHOTS}graph.png` });

    // Zoom in, out, and fit back.
    const fitted = await zoomOf(page);
    await page.getByRole('button', { name: 'zoom in' }).click();
    await expect.poll(() => zoomOf(page)).toBeGreaterThan(fitted);
    await page.getByTestId('graph').hover({ position: { x: 40, y: 40 } });
    await page.mouse.wheel(0, 600);
    await expect.poll(() => zoomOf(page)).toBeLessThan(fitted);
    await page.getByTestId('graph-fit').click();
    await expect.poll(() => zoomOf(page)).toBeCloseTo(fitted, 3);
    // Zoomed in, labels still keep apart.
    await page.getByRole('button', { name: 'zoom in' }).click();
    expect(overlapping(await labelBoxes(page))).toEqual([]);

    // Click-through: a peer lists the chains that reached it; one opens its trace.
    await page.getByTestId('graph-fit').click();
    await page.locator(`g.gnode[data-node-id="${widePeer(7)}"]`).click();
    const chains = page.getByTestId('peer-chains').locator('li');
    await expect.poll(() => chains.count()).toBe(2);
    const href = await chains.first().locator('a').getAttribute('href');
    expect(href).toMatch(/^\/traces\/[0-9a-f]{32}$/);
    await chains.first().locator('a').click();
    await page.waitForURL(`**${href}`);
    await expectClean(w);
    await page.close();
  });

  it('compares the last hour with the baseline: new, vanished and changed edges, each leading to its chains and alerts', async () => {
    const api = await conduct.get<{ lastSeen: string }>(`/api/v1/identities/${encodeURIComponent(REPORTER)}`);
    const until = Date.parse(api.body.lastSeen);
    const cmp = await conduct.get<{ edges: { from: string; to: string; operation: string; change: string; alerts: string[]; traces: string[] }[] }>(
      `/api/v1/identities/${encodeURIComponent(REPORTER)}/graph?since=${until - HOUR}&until=${until}&compare=baseline`,
    );
    expect(cmp.status).toBe(200);
    const change = (to: string) => cmp.body.edges.find((e) => e.to === to)?.change;
    expect(change(NEW_EXTERNAL_PEER)).toBe('new');
    expect(change('archive.ops.svc')).toBe('vanished');
    expect(change('postgresql/reports')).toBe('up');
    expect(change('billing.ops.svc')).toBe('same');
    const upload = cmp.body.edges.find((e) => e.to === NEW_EXTERNAL_PEER)!;
    expect(upload.traces).toEqual([uploadTrace]);
    expect(upload.alerts.length, 'the upload raised an alert').toBeGreaterThan(0);

    const w = await watchedPage(context);
    const { page } = w;
    await page.goto(`${conduct.api}/identities/${encodeURIComponent(REPORTER)}`);
    await page.getByTestId('compare-tab').click();
    // The choice is kept in the URL.
    await page.waitForURL(/graph=compare/);
    const rows = page.getByTestId('changes').locator('li');
    // One row per changed (from, to) pair of the API's answer.
    const notable = ['new', 'vanished', 'up', 'down'];
    const pairs = new Map<string, string>();
    for (const e of cmp.body.edges) {
      const key = `${e.from} ${e.to}`;
      const prev = pairs.get(key);
      if (notable.includes(e.change) && (!prev || notable.indexOf(e.change) < notable.indexOf(prev))) pairs.set(key, e.change);
    }
    expect([...pairs.values()]).toEqual(expect.arrayContaining(['new', 'vanished', 'up']));
    await expect.poll(() => rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-change')).sort())).toEqual([...pairs.values()].sort());
    await expect.poll(async () => (await drawnGraph(page))?.edges.find((e) => e.to === NEW_EXTERNAL_PEER)?.change).toBe('new');
    expect(await page.locator('g.gedge.change-vanished[data-to="archive.ops.svc"]').count()).toBe(1);
    expect(await page.locator('g.gedge.change-up[data-to="postgresql/reports"] .elabel text').textContent()).toMatch(/^↑ 1 op · 36 \(was \d+\)$/);

    // The new edge leads to its trace and to the alert raised on it.
    await rows.filter({ hasText: NEW_EXTERNAL_PEER }).locator('button').click();
    const panel = page.getByTestId('graph-panel-edge');
    await panel.waitFor();
    expect(await panel.locator(`a[href="/traces/${uploadTrace}"]`).count()).toBe(1);
    expect(await panel.locator(`a[href="/alerts/${encodeURIComponent(upload.alerts[0]!)}"]`).count()).toBe(1);
    await page.locator('section.card').filter({ has: page.getByTestId('graph') }).screenshot({ path: `${SCREENSHOTS}compare.png` });

    // Reloading the shared URL shows the same comparison; a day-long window can be chosen.
    await page.reload();
    await expect.poll(() => rows.count()).toBe(pairs.size);
    await page.getByLabel('window', { exact: true }).selectOption('1d');
    await page.waitForURL(/window=1d/);
    await expect.poll(() => page.getByTestId('compare-window').innerText()).toContain(new Date(until - 24 * HOUR).toISOString().slice(0, 16).replace('T', ' '));
    await expectClean(w);
    await page.close();
  });

  it('shows a trace as a span tree with timing bars, span fields, the identities in it and the alerts raised on it', async () => {
    type TraceBody = { chains: { identity: string; calls: { spanId: string; serverSpanId?: string; parentSpanId: string; peer: string }[] }[] };
    const trace = await conduct.get<TraceBody>(`/api/v1/traces/${uploadTrace}`);
    const calls = trace.body.chains.flatMap((c) => c.calls);
    const upload = calls.find((c) => c.peer === NEW_EXTERNAL_PEER)!;
    const raised = await conduct.get<{ alerts: { id: string; spanIds: string[] }[] }>(`/api/v1/alerts?traceId=${uploadTrace}`);
    expect(raised.body.alerts.length).toBeGreaterThan(0);
    expect(raised.body.alerts.flatMap((a) => a.spanIds)).toContain(upload.spanId);

    const w = await watchedPage(context);
    const { page } = w;
    await page.goto(`${conduct.api}/traces/${uploadTrace}`);
    const rows = page.getByTestId('span-tree').locator('li.span-row:not(.gap)');
    await expect.poll(() => rows.count()).toBe(calls.length);
    // Timing bars: the upload starts after the trace's first call.
    const leftOf = (id: string) => page.locator(`li.span-row[data-span-id="${id}"] .bar`).evaluate((el) => parseFloat((el as HTMLElement).style.left));
    const first = rows.first();
    expect(await leftOf(upload.spanId)).toBeGreaterThan(await first.locator('.bar').evaluate((el) => parseFloat((el as HTMLElement).style.left)));
    // The offending span is highlighted, and the alerts raised on the trace are listed beside the tree.
    const offending = page.locator(`li.span-row[data-span-id="${upload.spanId}"]`);
    expect(await offending.getAttribute('class')).toContain('offending');
    await expect.poll(() => page.getByTestId('trace-alerts').locator('li').count()).toBe(raised.body.alerts.length);
    expect(await page.getByTestId('trace-identities').innerText()).toContain(REPORTER);
    // A span's stored fields and its resource (the caller's source).
    await offending.locator('button.span-name').click();
    const details = page.getByTestId('span-details');
    await details.waitFor();
    const text = await details.innerText();
    expect(text).toContain(upload.spanId);
    expect(text).toContain(NEW_EXTERNAL_PEER);
    expect(text).toMatch(/Resource and source/);
    expect(await page.getByTestId('trace-link').getAttribute('href')).toBe(TRACE_URL.replace('{traceId}', uploadTrace));
    await page.screenshot({ path: `${SCREENSHOTS}trace.png`, fullPage: true });

    // The tree follows the stored parent relations: in the shop trace, checkout's calls hang under
    // web's call to checkout (their parent is the server span that call was stitched to).
    const shop = (await conduct.get<TraceBody>(`/api/v1/traces/${shopTrace}`)).body.chains.flatMap((c) => c.calls);
    const parents = new Map<string, string>();
    for (const c of shop) for (const id of [c.spanId, c.serverSpanId]) if (id) parents.set(id, c.spanId);
    const depth = (c: { parentSpanId: string }): number => {
      const parent = shop.find((x) => x.spanId === parents.get(c.parentSpanId));
      // Under a stored call, or under the row of a parent span that is not stored.
      return parent ? 1 + depth(parent) : c.parentSpanId ? 1 : 0;
    };
    expect(Math.max(...shop.map(depth))).toBeGreaterThan(1);
    await page.goto(`${conduct.api}/traces/${shopTrace}`);
    await expect.poll(() => rows.count()).toBe(shop.length);
    const drawnDepths = await rows.evaluateAll((els) => Object.fromEntries(els.map((e) => [e.getAttribute('data-span-id'), Number(e.getAttribute('data-depth'))])));
    expect(drawnDepths).toEqual(Object.fromEntries(shop.map((c) => [c.spanId, depth(c)])));
    // The reporter's calls all hang under its root server span, which is not a call: one grey row.
    await page.goto(`${conduct.api}/traces/${uploadTrace}`);
    await expect.poll(() => page.locator('li.span-row.gap').count()).toBe(new Set(calls.map((c) => c.parentSpanId)).size);
    await expectClean(w);
    await page.close();
  });

  it('filters alerts by severity, identity, time range and text, kept in the URL; sorts by score; takes bulk verdicts', async () => {
    type Listed = { alerts: { id: string; identity: string; severity: string; score: number; status: string }[] };
    const all = await conduct.get<Listed>('/api/v1/alerts?limit=200');
    expect(all.body.alerts.length).toBeGreaterThan(1);
    const w = await watchedPage(context);
    const { page } = w;
    const shown = () => page.locator('[data-testid=alerts] tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-alert-id')));
    await page.goto(`${conduct.api}/alerts`);
    await expect.poll(shown).toEqual(all.body.alerts.map((a) => a.id));

    // Severity: the rows are the API's for the same filter, and the URL carries it.
    await page.getByLabel('severity').selectOption('medium,high,critical');
    await page.waitForURL(/severity=medium%2Chigh%2Ccritical/);
    const medium = await conduct.get<Listed>('/api/v1/alerts?limit=200&severity=medium,high,critical');
    await expect.poll(shown).toEqual(medium.body.alerts.map((a) => a.id));
    // Free text.
    await page.getByLabel('search').fill(NEW_EXTERNAL_PEER);
    await page.waitForURL(/q=paste\.example\.com/);
    const text = await conduct.get<Listed>(`/api/v1/alerts?limit=200&severity=medium,high,critical&q=${NEW_EXTERNAL_PEER}`);
    expect(text.body.alerts.length).toBeGreaterThan(0);
    await expect.poll(shown).toEqual(text.body.alerts.map((a) => a.id));
    // A shared link shows the same list with the same controls.
    await page.goto(page.url());
    await expect.poll(shown).toEqual(text.body.alerts.map((a) => a.id));
    expect(await page.getByLabel('severity').inputValue()).toBe('medium,high,critical');
    expect(await page.getByLabel('search').inputValue()).toBe(NEW_EXTERNAL_PEER);

    // Identity and sort by score.
    await page.goto(`${conduct.api}/alerts?identity=${encodeURIComponent(REPORTER)}&sort=score`);
    const byScore = await conduct.get<Listed>(`/api/v1/alerts?limit=200&identity=${encodeURIComponent(REPORTER)}&sort=score`);
    await expect.poll(shown).toEqual(byScore.body.alerts.map((a) => a.id));
    const scores = byScore.body.alerts.map((a) => a.score);
    expect(scores).toEqual([...scores].sort((x, y) => y - x));
    expect(byScore.body.alerts.every((a) => a.identity === REPORTER)).toBe(true);
    await page.screenshot({ path: `${SCREENSHOTS}alerts.png`, fullPage: true });

    // An incident shows its findings in its row and on its page.
    const incidents = (await conduct.get<{ alerts: { id: string; detectors: string[]; findings: { title: string }[] }[] }>(`/api/v1/alerts?traceId=${uploadTrace}`)).body.alerts;
    const incident = incidents.find((a) => a.findings.length > 1);
    expect(incident, 'the upload is one incident with several findings').toBeDefined();
    const row = page.locator(`tr[data-alert-id="${incident!.id}"]`);
    expect(await row.getByTestId('row-findings').innerText()).toContain(incident!.findings[1]!.title);
    for (const d of incident!.detectors) expect(await row.innerText()).toContain(d);
    await page.goto(`${conduct.api}/alerts/${encodeURIComponent(incident!.id)}`);
    await expect.poll(() => page.getByTestId('findings').locator(':scope > li').count()).toBe(incident!.findings.length);
    expect(await page.getByTestId('findings').innerText()).toContain(incident!.findings[0]!.title);
    await page.goto(`${conduct.api}/alerts?identity=${encodeURIComponent(REPORTER)}&sort=score`);

    // Time range: the traffic is 11 hours old in event time, so the last hour holds none of it.
    await page.getByLabel('time range').selectOption('1h');
    await page.waitForURL(/range=1h/);
    await expect.poll(() => page.locator('main').innerText()).toContain('No alerts.');
    await page.getByLabel('time range').selectOption('');

    // Bulk verdict: every open alert of the reporter acknowledged at once.
    await page.goto(`${conduct.api}/alerts?identity=${encodeURIComponent(REPORTER)}&status=open`);
    const open = (await conduct.get<Listed>(`/api/v1/alerts?limit=200&identity=${encodeURIComponent(REPORTER)}&status=open`)).body.alerts;
    expect(open.length).toBeGreaterThan(0);
    await expect.poll(shown).toEqual(open.map((a) => a.id));
    await page.getByLabel('select all').check();
    await page.getByTestId('bulk').getByRole('button', { name: 'Acknowledge' }).click();
    await page.getByTestId('bulk').getByRole('status').filter({ hasText: `${open.length} marked acknowledged` }).waitFor();
    for (const a of open) expect((await conduct.get<{ status: string }>(`/api/v1/alerts/${encodeURIComponent(a.id)}`)).body.status).toBe('acknowledged');
    await expect.poll(shown).toEqual([]);
    await expectClean(w);
    await page.close();
  });

  it('fits every table at 1280 and 1440 px, breaks ids only at separators, and shows absolute event times beside relative ones', async () => {
    const alert = (await conduct.get<{ alerts: { id: string }[] }>(`/api/v1/alerts?traceId=${uploadTrace}`)).body.alerts[0]!;
    const pages = [
      '/alerts',
      `/identities/${encodeURIComponent(REPORTER)}`,
      `/identities/${encodeURIComponent(REPORTER)}?graph=compare`,
      `/identities/${encodeURIComponent(WIDE)}`,
      `/traces/${uploadTrace}`,
      `/alerts/${encodeURIComponent(alert.id)}`,
      '/',
    ];
    let wrappedIds = 0;
    for (const width of [1280, 1440]) {
      const ctx = await browser.newContext({ viewport: { width, height: 900 } });
      const page = await ctx.newPage();
      for (const path of pages) {
        await page.goto(`${conduct.api}${path}`);
        await page.locator('main table, main [data-testid=graph], main [data-testid=span-tree], main [data-testid=explanation]').first().waitFor();
        await page.waitForLoadState('networkidle');
        // A peer's panel with long names in the narrow side column.
        if (path.endsWith(encodeURIComponent(WIDE))) await page.locator(`g.gnode[data-node-id="${widePeer(2)}"]`).click();
        const clipped = await page.evaluate(() => {
          const out: string[] = [];
          for (const table of document.querySelectorAll('main table')) {
            const parent = table.parentElement!;
            if (table.getBoundingClientRect().right > parent.getBoundingClientRect().right + 1) out.push(`table wider than its box: ${table.className}`);
            for (const cell of table.querySelectorAll('td, th')) {
              const el = cell as HTMLElement;
              if (el.scrollWidth > el.clientWidth + 1) out.push(`${el.tagName} ${el.scrollWidth}>${el.clientWidth}: ${el.innerText.slice(0, 40)}`);
            }
          }
          if (document.documentElement.scrollWidth > window.innerWidth) out.push(`page ${document.documentElement.scrollWidth}>${window.innerWidth}`);
          return out;
        });
        expect(clipped, `${path} at ${width}px`).toEqual([]);
        const breaks = await page.evaluate(() => {
          const bad: string[] = [];
          let wrapped = 0;
          for (const el of document.querySelectorAll('main .id')) {
            const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
            let prevTop: number | undefined;
            let prevChar = '';
            let lines = 1;
            for (let n = walker.nextNode() as Text | null; n; n = walker.nextNode() as Text | null) {
              for (let i = 0; i < n.data.length; i++) {
                const r = document.createRange();
                r.setStart(n, i);
                r.setEnd(n, i + 1);
                const rect = r.getClientRects()[0];
                if (!rect || rect.width === 0) continue;
                if (prevTop !== undefined && rect.top > prevTop + 2) {
                  lines++;
                  if (!/[/:.\- ]/.test(prevChar)) bad.push(`${el.textContent} after "${prevChar}" at ${i}`);
                }
                prevTop = rect.top;
                prevChar = n.data[i]!;
              }
            }
            if (lines > 1) wrapped++;
          }
          return { bad, wrapped };
        });
        expect(breaks.bad, `${path} at ${width}px`).toEqual([]);
        wrappedIds += breaks.wrapped;
      }
      // Event times: absolute with the relative beside it; the traffic is hours old in event time
      // and was received while the test ran, so the received time is under them (a line of its own in a table).
      await page.goto(`${conduct.api}/alerts`);
      const time = page.locator('[data-testid=alerts] [data-testid=time]').first();
      await time.waitFor();
      expect(await time.innerText()).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ · \d+[smhd] ago\nreceived \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/);
      await ctx.close();
    }
    // Some ids did wrap (at their separators), so the check above checked something.
    expect(wrappedIds).toBeGreaterThan(0);
  });
});
