/**
 * The SQL of an alert list (table `alerts` of detection-schema.ts) for a filter: the WHERE clauses
 * of the filters present, every value bound, and the order asked for. The statement text depends
 * only on which filters are present and the order, so callers can cache statements by `shape`.
 */
import type { AlertListFilter } from '../contracts.js';

const SEVERITY_RANK_SQL = `CASE severity WHEN 'critical' THEN 4 WHEN 'high' THEN 3 WHEN 'medium' THEN 2 WHEN 'low' THEN 1 ELSE 0 END`;

/** The searched text of an alert: ids, detector, title, explanation and its findings (as JSON). */
const SEARCHED_SQL = `lower(id || ' ' || identity || ' ' || detector || ' ' || trace_id || ' ' ||
  coalesce(json_extract(body, '$.title'), '') || ' ' || coalesce(json_extract(body, '$.explanation'), '') || ' ' ||
  coalesce(json_extract(body, '$.findings'), ''))`;

/** Filter fields, their clause and how their value binds, in binding order. */
const FILTERS: ReadonlyArray<[Exclude<keyof AlertListFilter, 'limit' | 'sort'>, string, (v: never) => unknown]> = [
  ['identity', 'identity = ?', (v: string) => v],
  // Any finding of an incident (`detectors`; alerts stored before incidents have `detector` only).
  ['detector', `EXISTS (SELECT 1 FROM json_each(coalesce(json_extract(body, '$.detectors'), json_array(detector))) WHERE value = ?)`, (v: string) => v],
  ['status', 'status = ?', (v: string) => v],
  ['sinceMs', 'last_seen_ms >= ?', (v: number) => v],
  ['untilMs', 'event_ms < ?', (v: number) => v],
  ['traceId', 'trace_id = ?', (v: string) => v.toLowerCase()],
  ['severities', 'severity IN (SELECT value FROM json_each(?))', (v: readonly string[]) => JSON.stringify(v)],
  ['text', `instr(${SEARCHED_SQL}, ?) > 0`, (v: string) => v.toLowerCase()],
];

const ORDERS: Record<NonNullable<AlertListFilter['sort']>, string> = {
  time: 'last_seen_ms DESC, event_ms DESC, id DESC',
  score: `json_extract(body, '$.score') DESC, last_seen_ms DESC, id DESC`,
  severity: `${SEVERITY_RANK_SQL} DESC, json_extract(body, '$.score') DESC, last_seen_ms DESC, id DESC`,
};

export interface AlertListSql {
  /** Which filters are present and the order: equal shapes have equal SQL. */
  shape: string;
  /** Selects `body`; its last parameter is the limit. */
  sql: string;
  /** The filter values in binding order (the limit not included). */
  params: unknown[];
}

export function alertListSql(filter: Omit<AlertListFilter, 'limit'>): AlertListSql {
  const present = FILTERS.filter(([field]) => {
    const v = filter[field];
    return v !== undefined && v !== '' && !(field === 'sinceMs' || field === 'untilMs' ? !Number.isFinite(v) : false);
  });
  const sort = filter.sort && filter.sort in ORDERS ? filter.sort : 'time';
  const where = present.map(([, clause]) => clause).join(' AND ');
  return {
    shape: `${present.map(([field]) => field).join(',')}|${sort}`,
    sql: `SELECT body FROM alerts ${where ? `WHERE ${where}` : ''} ORDER BY ${ORDERS[sort]} LIMIT ?`,
    params: present.map(([field, , bind]) => bind(filter[field] as never)),
  };
}
