/**
 * Baseline summaries arrive as lists of `{value, count}`-like objects or as `{value: count}` maps;
 * this turns either into rows of text. Values are untrusted and stay text.
 */

export interface Entry {
  label: string;
  count?: number;
}

export const MAX_ENTRIES = 100;

const LABEL_KEYS = ['value', 'name', 'peer', 'operation', 'target', 'source', 'key', 'id', 'shape'];

function labelOf(item: Record<string, unknown>): string {
  for (const k of LABEL_KEYS) {
    const v = item[k];
    if (typeof v === 'string' || typeof v === 'number') return String(v);
  }
  if ('from' in item && 'to' in item) return `${String(item.from)} → ${String(item.to)}`;
  const rest = Object.entries(item).filter(([k]) => k !== 'count' && k !== 'firstSeen' && k !== 'lastSeen');
  return rest.map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join(' ');
}

export function entries(value: unknown): Entry[] {
  if (value === null || value === undefined) return [];
  if (Array.isArray(value)) {
    return value.slice(0, MAX_ENTRIES).map((item) => {
      if (item !== null && typeof item === 'object') {
        const o = item as Record<string, unknown>;
        return { label: labelOf(o), count: typeof o.count === 'number' ? o.count : undefined };
      }
      return { label: String(item) };
    });
  }
  if (typeof value === 'object') {
    return Object.entries(value as Record<string, unknown>)
      .slice(0, MAX_ENTRIES)
      .map(([k, v]) =>
        typeof v === 'number' ? { label: k, count: v } : { label: v && typeof v === 'object' ? `${k}: ${JSON.stringify(v)}` : `${k}: ${String(v)}` },
      );
  }
  return [{ label: String(value) }];
}
