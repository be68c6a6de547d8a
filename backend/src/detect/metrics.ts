import { Counter, Gauge, type Registry } from 'prom-client';
import type { Detection, DetectionStats } from './detection.js';

/** The counters of `Detection.stats()` on `/metrics`: each counted stat, its family and labels. */
const COUNTED: ReadonlyArray<{ stat: keyof DetectionStats; family: string; labels?: Record<string, string> }> = [
  { stat: 'alertsRaised', family: 'conduct_detection_alerts_total', labels: { outcome: 'raised' } },
  { stat: 'alertsUpdated', family: 'conduct_detection_alerts_total', labels: { outcome: 'repeated' } },
  { stat: 'alertsSuperseded', family: 'conduct_detection_alerts_total', labels: { outcome: 'superseded' } },
  { stat: 'chainsLearned', family: 'conduct_detection_chains_total', labels: { outcome: 'learned' } },
  { stat: 'chainsHeld', family: 'conduct_detection_chains_total', labels: { outcome: 'held' } },
  { stat: 'identitiesRefused', family: 'conduct_detection_identities_refused_total' },
  { stat: 'findingsFolded', family: 'conduct_detection_findings_folded_total' },
  { stat: 'detectorErrors', family: 'conduct_detection_detector_errors_total' },
  { stat: 'releaseChainsHeld', family: 'conduct_detection_release_chains_total', labels: { outcome: 'held' } },
  { stat: 'releaseChainsLearned', family: 'conduct_detection_release_chains_total', labels: { outcome: 'learned' } },
  { stat: 'releaseChainsDropped', family: 'conduct_detection_release_chains_total', labels: { outcome: 'dropped' } },
  { stat: 'releasesWithheld', family: 'conduct_detection_releases_withheld_total' },
  { stat: 'releaseHoldsRefused', family: 'conduct_detection_release_holds_refused_total' },
];

/** Help text of each counter family. */
const HELP: Record<string, string> = {
  conduct_detection_alerts_total:
    'Alerts (incidents) detection wrote, by outcome: raised (new), repeated (a repeat counted on an existing alert), superseded (a later part of the trace showed the finding did not hold). conduct_alerts_total counts the events announced to the sinks.',
  conduct_detection_chains_total:
    'Chains analysed by outcome: learned into their identity\'s baseline, or held out of it because they raised an alert of medium or above (until a verdict).',
  conduct_detection_identities_refused_total:
    'Chains of new identities refused a baseline because limits.maxIdentities or limits.maxNewIdentitiesPerMinute was reached.',
  conduct_detection_findings_folded_total:
    'Findings folded into one flood alert because their identity was over limits.maxAlertsPerIdentityPerHour.',
  conduct_detection_detector_errors_total: 'Detector failures on a chain (a bug or unexpected input): logged and counted, the chain goes on.',
  conduct_detection_release_chains_total:
    'Chains of a release (a new service.version) by outcome: held until the release\'s grace period ends, learned after it, or dropped beyond the held chains kept per release.',
  conduct_detection_releases_withheld_total: 'Releases whose held chains were withheld from learning for good (a malicious verdict, or a later attack on that version).',
  conduct_detection_release_holds_refused_total: 'Releases beyond the releases held at once: their chains were learned at once, without a hold.',
};

/** `conduct_detection_releases_held`: releases whose chains are held now. */
export const METRIC_RELEASES_HELD = 'conduct_detection_releases_held';

export interface DetectionMetricsOptions {
  registry: Registry;
  /**
   * Register the gauge of releases held now, read from the tracked detections. Not on a cluster:
   * there the API's read-only views of other partitions are detections too and hold the same
   * releases again.
   */
  gauges: boolean;
}

export interface DetectionMetrics {
  /**
   * Counts what this detection does from now on (returned as is). Every detection the process
   * builds is tracked: a cluster owner builds a new one when its partitions change, and the
   * counters go on from the sum. A detection no longer referenced elsewhere is let go.
   */
  track<D extends Detection>(detection: D): D;
}

/**
 * Exports detection's own counters (`Detection.stats()`) on `/metrics`, read when scraped: each
 * counter adds what its detections counted since the last scrape, so the families only go up
 * while detections come and go.
 */
export function registerDetectionMetrics({ registry, gauges }: DetectionMetricsOptions): DetectionMetrics {
  const tracked: Array<{ ref: WeakRef<Detection>; last: Partial<Record<keyof DetectionStats, number>> }> = [];
  const families = new Map<string, Counter<string>>();
  for (const { family, labels } of COUNTED) {
    let counter = families.get(family);
    if (!counter) {
      counter = new Counter({
        name: family,
        help: HELP[family]!,
        labelNames: labels ? Object.keys(labels) : [],
        registers: [registry],
        collect: () => refresh(),
      });
      families.set(family, counter);
    }
    // Every series shows from the first scrape, at 0.
    if (labels) counter.inc(labels, 0);
    else counter.inc(0);
  }

  /** Adds what each live detection counted since the last refresh; forgets the collected ones. */
  function refresh(): void {
    for (let i = tracked.length - 1; i >= 0; i--) {
      const entry = tracked[i]!;
      const detection = entry.ref.deref();
      if (!detection) {
        tracked.splice(i, 1);
        continue;
      }
      const stats = detection.stats();
      for (const { stat, family, labels } of COUNTED) {
        const now = stats[stat];
        const delta = now - (entry.last[stat] ?? 0);
        entry.last[stat] = now;
        if (delta <= 0) continue;
        const counter = families.get(family)!;
        if (labels) counter.inc(labels, delta);
        else counter.inc(delta);
      }
    }
  }

  if (gauges) {
    new Gauge({
      name: METRIC_RELEASES_HELD,
      help: 'Releases (a new service.version of an identity\'s workload) whose chains are held out of learning now, until their grace period ends.',
      registers: [registry],
      collect() {
        let held = 0;
        for (const entry of tracked) held += entry.ref.deref()?.stats().releasesHeld ?? 0;
        this.set(held);
      },
    });
  }

  return {
    track(detection) {
      // What the detections counted so far is taken now: the one this replaces (a cluster owner's
      // rebuild) may be let go before the next scrape.
      refresh();
      tracked.push({ ref: new WeakRef(detection), last: {} });
      return detection;
    },
  };
}
