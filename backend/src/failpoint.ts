import { writeSync } from 'node:fs';

/**
 * Failpoints, for crash-injection tests only (test/reliability/crash.test.ts): with
 * `CONDUCT_FAILPOINTS=name:N[,name:N...]` in its environment, the process kills itself with
 * SIGKILL the Nth time it passes the named point, as `kill -9` would at that moment. The variable
 * is read once, when this module loads; without it (always, outside those tests) a failpoint is
 * one comparison. Never set it on a deployed instance.
 */

/** The points, in the order a span meets them: ingest, store and analyse, settle, announce, deliver. */
export const FAILPOINTS = [
  /** A group of requests is written to the journal; their senders have no answer yet. */
  'journal.appended',
  /** A batch is analysed; its chains, learning and alerts are not stored yet. */
  'engine.analysed',
  /** A batch's chains, learning and alerts are committed; the journal does not know yet. */
  'engine.committed',
  /** The journal has recorded which requests a stored batch settles. */
  'journal.settled',
  /** An alert was handed to every listener (sinks, live UI). */
  'alerts.emitted',
  /** A sink's receiver took a delivery from the outbox; it is not marked delivered yet. */
  'outbox.sent',
] as const;

export type Failpoint = (typeof FAILPOINTS)[number];

/** Hits left before each armed point fires; undefined when none is armed. */
const armed = parse(process.env.CONDUCT_FAILPOINTS);

/** Kills the process (SIGKILL) when `name` is armed and this is its Nth hit; otherwise nothing. */
export function failpoint(name: Failpoint): void {
  if (armed === undefined) return;
  const left = armed.get(name);
  if (left === undefined) return;
  if (left > 1) {
    armed.set(name, left - 1);
    return;
  }
  // A line on standard error first (written synchronously, so it is out before the kill), so that
  // a test can tell this kill from one of its own.
  writeSync(2, `${FAILPOINT_MARK} ${name}\n`);
  process.kill(process.pid, 'SIGKILL');
}

/** What a failpoint writes to standard error, followed by its name, just before it kills the process. */
export const FAILPOINT_MARK = 'conduct failpoint fired:';

/** `name:N,name:N` into hits by point; unknown names and counts below 1 are refused (a test's typo must not pass silently). */
export function parse(spec: string | undefined): Map<string, number> | undefined {
  if (!spec) return undefined;
  const out = new Map<string, number>();
  for (const part of spec.split(',')) {
    const [name, count] = part.trim().split(':');
    const hits = Number(count ?? '1');
    if (!(FAILPOINTS as readonly string[]).includes(name ?? '') || !Number.isInteger(hits) || hits < 1) {
      throw new Error(`CONDUCT_FAILPOINTS: "${part}" is not name:N with a known name (${FAILPOINTS.join(', ')}) and N >= 1`);
    }
    out.set(name!, hits);
  }
  return out;
}
