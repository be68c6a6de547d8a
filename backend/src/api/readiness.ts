/**
 * Readiness: the conditions conduct needs before it takes traffic (`GET /readyz`), each behind one
 * small interface so a part can add its own (the store, the journal, the pipeline; a PostgreSQL
 * backend or a cluster member its connection or leases).
 */
export interface ReadinessCheck {
  /** Short name, shown in the `/readyz` answer (`store`, `journal`, `pipeline`). */
  readonly name: string;
  /** Why it is not ready, or undefined when it is. A throw or rejection counts as not ready, with its message. */
  check(): string | undefined | Promise<string | undefined>;
}

/** A check that takes longer than this counts as not ready. */
export const READINESS_CHECK_TIMEOUT_MS = 2_000;

export interface ReadinessReport {
  ready: boolean;
  /** Each check by name: `ok`, or why it is not ready. */
  checks: Record<string, string>;
}

/** Runs every check at once; ready when each answers undefined in time. */
export async function evaluateReadiness(checks: readonly ReadinessCheck[]): Promise<ReadinessReport> {
  const results = await Promise.all(checks.map(runCheck));
  const report: ReadinessReport = { ready: true, checks: {} };
  checks.forEach((c, i) => {
    const reason = results[i];
    if (reason !== undefined) report.ready = false;
    report.checks[c.name] = reason ?? 'ok';
  });
  return report;
}

async function runCheck(c: ReadinessCheck): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      Promise.resolve().then(() => c.check()),
      new Promise<string>((resolve) => (timer = setTimeout(() => resolve(`no answer within ${READINESS_CHECK_TIMEOUT_MS} ms`), READINESS_CHECK_TIMEOUT_MS))),
    ]);
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  } finally {
    clearTimeout(timer);
  }
}
