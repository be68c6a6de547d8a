import type { Chain } from '@conduct/processor';
import type { Alert } from '../alerts/model.js';
import type { Detection } from './detection.js';

/** The part of the engine's analysis context detection needs: announcing alerts. */
export interface AlertEmitter {
  emit(alert: Alert, event?: 'alert' | 'feedback'): void;
}

/**
 * Adapts the detection service to the engine's analyser hook: analyses each stored batch and
 * announces new alerts and counted repeats to the engine's `onAlert` listeners.
 */
export function createDetectionAnalyser(detection: Detection): {
  name: string;
  analyse(chains: readonly Chain[], ctx: AlertEmitter): void;
} {
  return {
    name: 'detection',
    analyse(chains, ctx) {
      const result = detection.analyse(chains);
      for (const alert of result.alerts) ctx.emit(alert, 'alert');
      for (const alert of result.updated) ctx.emit(alert, 'alert');
    },
  };
}
