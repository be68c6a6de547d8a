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
  if (Array.isArray(item.operations)) return item.operations.map(String).join(' → ');
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
    // A map of counts, or of groups (sources: {regions: [...], networks: [...]}) flattened as "group value".
    const out: Entry[] = [];
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (typeof v === 'number') out.push({ label: k, count: v });
      else if (Array.isArray(v)) out.push(...entries(v).map((e) => ({ ...e, label: `${k} ${e.label}` })));
      else out.push({ label: v && typeof v === 'object' ? `${k}: ${JSON.stringify(v)}` : `${k}: ${String(v)}` });
      if (out.length >= MAX_ENTRIES) break;
    }
    return out.slice(0, MAX_ENTRIES);
  }
  return [{ label: String(value) }];
}
