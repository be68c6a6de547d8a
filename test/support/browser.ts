import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const uiSources = join(repo, 'backend/ui');
const uiIndex = join(repo, 'backend/dist/ui/index.html');

/** Debian's Chromium, installed by .ci/run when missing. */
export const CHROMIUM = process.env.CONDUCT_CHROMIUM ?? '/usr/bin/chromium';

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
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
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
