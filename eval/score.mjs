// Scores the alerts a run raised against the labels of the traces the world sent.

export const SEVERITY_RANK = { info: 0, low: 1, medium: 2, high: 3, critical: 4 };
const serious = (a) => SEVERITY_RANK[a.severity] >= SEVERITY_RANK.medium;

/** One line about an alert, for the tables and the JSON. */
export function describe(a) {
  return {
    id: a.id,
    identity: a.identity,
    severity: a.severity,
    score: a.score,
    detectors: a.detectors ?? [a.detector],
    title: a.title,
    traceId: a.traceId,
    count: a.count,
  };
}

/**
 * `labels`: traceId -> {kind: 'learning'|'benign'|'attack', name}; `attacks`: the world's attacks
 * ({name, identity}); `alerts`: every alert read from the API. Answers the figures and whether
 * each target is met.
 */
export function score({ labels, attacks, challenges, alerts }) {
  const tracesOf = new Map();
  for (const [traceId, label] of labels) {
    const key = `${label.kind}:${label.name}`;
    if (!tracesOf.has(key)) tracesOf.set(key, new Set());
    tracesOf.get(key).add(traceId);
  }

  const attackRows = attacks.map((attack) => {
    const traces = tracesOf.get(`attack:${attack.name}`) ?? new Set();
    const mine = alerts.filter((a) => traces.has(a.traceId) && a.identity === attack.identity);
    const others = alerts.filter((a) => traces.has(a.traceId) && a.identity !== attack.identity);
    const perTrace = new Map();
    for (const a of mine) perTrace.set(a.traceId, (perTrace.get(a.traceId) ?? 0) + 1);
    const worst = mine.reduce((w, a) => (w === 'none' || SEVERITY_RANK[a.severity] > SEVERITY_RANK[w] ? a.severity : w), 'none');
    // Elsewhere: the attacked identity's alerts on other traces (an attack counted on an older incident).
    const elsewhere = alerts.filter((a) => a.identity === attack.identity && !traces.has(a.traceId) && a.lastSeenMs >= attack.at && a.firstSeenMs < attack.at);
    return {
      name: attack.name,
      identity: attack.identity,
      what: attack.what,
      traces: traces.size,
      caught: mine.some(serious),
      severity: worst,
      alerts: mine.length,
      maxAlertsPerTrace: Math.max(0, ...perTrace.values()),
      detectors: [...new Set(mine.flatMap((a) => a.detectors ?? [a.detector]))],
      otherIdentitiesSerious: others.filter(serious).map(describe),
      countedOnOlderIncident: elsewhere.map(describe),
      alertList: mine.map(describe),
    };
  });

  const challengeRows = Object.entries(challenges).map(([name, what]) => {
    const traces = tracesOf.get(`benign:${name}`) ?? new Set();
    const on = alerts.filter((a) => traces.has(a.traceId));
    const bad = on.filter(serious);
    return {
      name,
      what,
      traces: traces.size,
      falseSerious: bad.length,
      perThousand: traces.size ? (bad.length * 1000) / traces.size : 0,
      repeats: bad.reduce((n, a) => n + (a.count ?? 1), 0),
      low: on.length - bad.length,
      alertList: bad.map(describe),
    };
  });

  const learningTraces = tracesOf.get('learning:learning') ?? new Set();
  const learningSerious = alerts.filter((a) => learningTraces.has(a.traceId) && serious(a));
  const unknown = alerts.filter((a) => !labels.has(a.traceId));

  const targets = {
    everyAttackCaught: attackRows.every((r) => r.caught),
    noFalseSerious: challengeRows.every((r) => r.falseSerious === 0) && unknown.filter(serious).length === 0,
    oneAlertPerAttackedTraceAndIdentity: attackRows.every((r) => r.maxAlertsPerTrace <= 1),
  };
  return {
    attacks: attackRows,
    challenges: challengeRows,
    learning: { traces: learningTraces.size, serious: learningSerious.length, alertList: learningSerious.map(describe) },
    unlabelled: { alerts: unknown.length, serious: unknown.filter(serious).map(describe) },
    targets,
    met: Object.values(targets).every(Boolean),
  };
}

const pad = (s, n) => String(s).padEnd(n);
const lpad = (s, n) => String(s).padStart(n);

/** The printed report. */
export function table(result) {
  const out = [];
  out.push('attacks (caught: an alert of medium or above for the attacked identity on an attacked trace)');
  out.push(`  ${pad('attack', 20)} ${pad('identity', 44)} ${lpad('traces', 6)}  ${pad('caught', 7)} ${pad('severity', 9)} ${lpad('alerts', 6)} ${lpad('max/trace', 9)}  detectors`);
  for (const r of result.attacks) {
    out.push(
      `  ${pad(r.name, 20)} ${pad(r.identity, 44)} ${lpad(r.traces, 6)}  ${pad(r.caught ? 'yes' : 'NO', 7)} ${pad(r.severity, 9)} ${lpad(r.alerts, 6)} ${lpad(r.maxAlertsPerTrace, 9)}  ${r.detectors.join(', ') || '-'}`,
    );
  }
  const caught = result.attacks.filter((r) => r.caught).length;
  out.push(`  recall: ${caught}/${result.attacks.length}`);
  out.push('');
  out.push('benign challenges (false alerts: medium or above, any identity, on the challenge\'s traces)');
  out.push(`  ${pad('challenge', 18)} ${lpad('traces', 7)} ${lpad('false', 6)} ${lpad('per 1,000', 9)} ${lpad('repeats', 8)} ${lpad('low', 5)}`);
  for (const r of result.challenges) {
    out.push(`  ${pad(r.name, 18)} ${lpad(r.traces, 7)} ${lpad(r.falseSerious, 6)} ${lpad(r.perThousand.toFixed(2), 9)} ${lpad(r.repeats, 8)} ${lpad(r.low, 5)}`);
  }
  out.push(`  (learning: ${result.learning.traces} traces, ${result.learning.serious} alerts of medium or above; not a target)`);
  if (result.unlabelled.serious.length) out.push(`  alerts of medium or above on no trace the world sent: ${result.unlabelled.serious.length}`);
  out.push('');
  const misses = [];
  for (const r of result.attacks) {
    if (!r.caught) misses.push(`  MISSED ${r.name} (${r.identity}): ${r.alertList.length ? r.alertList.map((a) => `${a.severity} ${a.detectors.join('+')}`).join('; ') : 'no alert on its traces'}${r.countedOnOlderIncident.length ? `; counted on an older incident: ${r.countedOnOlderIncident.map((a) => `${a.severity} ${a.title}`).join('; ')}` : ''}`);
    for (const a of r.otherIdentitiesSerious) misses.push(`  on attack ${r.name}, another identity: ${a.severity} ${a.detectors.join('+')} ${a.identity}: ${a.title}`);
  }
  for (const r of result.challenges) misses.push(...grouped(`false ${r.name}`, r.alertList));
  misses.push(...grouped('unlabelled', result.unlabelled.serious));
  if (misses.length) {
    out.push('what misses:');
    out.push(...misses);
    out.push('');
  }
  out.push('targets');
  out.push(`  every attack caught at medium or above        ${result.targets.everyAttackCaught ? 'met' : 'NOT met'}`);
  out.push(`  0 false alerts of medium or above             ${result.targets.noFalseSerious ? 'met' : 'NOT met'}`);
  out.push(`  one alert per attacked trace and identity     ${result.targets.oneAlertPerAttackedTraceAndIdentity ? 'met' : 'NOT met'}`);
  return out.join('\n');
}

/** False alerts grouped by identity and detectors: how many incidents, their repeats, one title. */
function grouped(prefix, alerts) {
  const groups = new Map();
  for (const a of alerts) {
    const key = `${a.identity} ${a.detectors.join('+')}`;
    const g = groups.get(key) ?? { n: 0, repeats: 0, worst: a.severity, title: a.title };
    g.n++;
    g.repeats += a.count ?? 1;
    if (SEVERITY_RANK[a.severity] > SEVERITY_RANK[g.worst]) g.worst = a.severity;
    groups.set(key, g);
  }
  return [...groups].map(([key, g]) => `  ${prefix}: ${g.n} x ${g.worst} ${key} (${g.repeats} with repeats), e.g. ${g.title.slice(0, 160)}`);
}
