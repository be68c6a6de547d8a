import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const uiSources = join(repo, 'backend/ui');
const uiIndex = join(repo, 'backend/dist/ui/index.html');

/**
 * The browser the UI tests drive: `CHROMIUM_PATH` (or the older `CONDUCT_CHROMIUM`) when set,
 * otherwise the headless Chromium shipped inside the npm package `@sparticuz/chromium`, which
 * `npm install` brings like any other dev dependency: no system browser, no download.
 */
export const CHROMIUM_OVERRIDE = process.env.CHROMIUM_PATH || process.env.CONDUCT_CHROMIUM || undefined;

/** Flags that keep Chromium off the network it would reach on its own (updates, sync, QUIC). */
export const QUIET_NETWORK_ARGS = [
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
];

/**
 * Flags of the package (made for serverless hosts) that would make the test browser laxer than a
 * user's: same-origin and mixed-content checks stay on, so the security tests test something.
 */
const DROPPED_PACKAGE_ARGS = new Set(['--disable-web-security', '--allow-running-insecure-content', '--single-process']);

async function browserLaunch(): Promise<{ executablePath: string; args: string[] }> {
  if (CHROMIUM_OVERRIDE) {
    return { executablePath: CHROMIUM_OVERRIDE, args: ['--headless', '--no-sandbox', '--disable-gpu', ...QUIET_NETWORK_ARGS] };
  }
  const packaged = (await import('@sparticuz/chromium')).default;
  const args = packaged.args.filter((a) => !DROPPED_PACKAGE_ARGS.has(a) && !a.startsWith('--headless'));
  for (const a of QUIET_NETWORK_ARGS) if (!args.includes(a)) args.push(a);
  return { executablePath: await packaged.executablePath(), args };
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/** Builds the UI into backend/dist/ui/ when it is missing or older than its sources. */
export function ensureUiBuilt(): void {
  if (existsSync(uiIndex) && statSync(uiIndex).mtimeMs >= newestMtime(uiSources)) return;
  execFileSync(process.execPath, [join(repo, 'node_modules/vite/bin/vite.js'), 'build', '--config', join(uiSources, 'vite.config.ts')], {
    cwd: join(repo, 'backend'),
    stdio: 'pipe',
  });
}

export async function launchBrowser(): Promise<Browser> {
  const { executablePath, args } = await browserLaunch();
  return chromium.launch({ executablePath, args, headless: true });
}

/** What a page did that it must not: dialogs opened, CSP violations, script errors. */
export interface PageWatch {
  page: Page;
  dialogs: string[];
  consoleErrors: string[];
  pageErrors: string[];
  /** Violations reported in the page through `securitypolicyviolation` events. */
  cspViolations(): Promise<string[]>;
}

/** Opens a page that records dialogs, console errors, uncaught errors and CSP violations. */
export async function watchedPage(context: BrowserContext): Promise<PageWatch> {
  const page = await context.newPage();
  const dialogs: string[] = [];
  const consoleErrors: string[] = [];
  const pageErrors: string[] = [];
  page.on('dialog', (d) => {
    dialogs.push(`${d.type()}: ${d.message()}`);
    void d.dismiss().catch(() => undefined);
  });
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  await page.addInitScript(() => {
    const w = window as unknown as { __csp: string[] };
    w.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => w.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  return {
    page,
    dialogs,
    consoleErrors,
    pageErrors,
    cspViolations: () => page.evaluate(() => (window as unknown as { __csp?: string[] }).__csp ?? []),
  };
}
