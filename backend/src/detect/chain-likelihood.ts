import type { Call } from '@conduct/processor';
import { END, START, count, transitionKey, transitionsFrom, type Baseline } from '../learn/index.js';

/**
 * Transitions that are new to an identity yet not unusual behaviour: a chain that skips one
 * optional step of its learned path (a cache hit that skips the stock lookup), and a retry of a
 * call that failed. `unusual-chain` leaves both alone; the operations themselves are still
 * judged by `new-operation` and `new-peer`.
 */

/** True when `prev -> next` skips one learned step: some learned X with `prev -> X` and `X -> next`. */
export function skipsOptionalStep(b: Baseline, prev: string, next: string): boolean {
  if (prev === END || next === START) return false;
  for (const t of transitionsFrom(b, prev)) {
    if (t.next !== END && t.next !== next && count(b, 'transition', transitionKey(t.next, next)) > 0) return true;
  }
  return false;
}

/** True when the step repeats the operation of a call that failed (a retry after an error). */
export function isRetryAfterError(previous: Call | undefined, prev: string, next: string): boolean {
  return previous !== undefined && prev === next && previous.status === 'error';
}
