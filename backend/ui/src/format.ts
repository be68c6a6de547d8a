/** Formatting helpers. Everything returned is a plain string for a JSX text node. */

export function formatTime(value: string | number | null | undefined): string {
  if (value === null || value === undefined || value === '') return '—';
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return d.toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, 'Z');
}

export function formatAgo(value: string | null | undefined, now = Date.now()): string {
  if (!value) return '—';
  const t = new Date(value).getTime();
  if (Number.isNaN(t)) return String(value);
  const s = Math.round((now - t) / 1000);
  if (s < 0) return formatTime(value);
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86_400)}d ago`;
}

export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

function isCounted(v: unknown): v is { key?: unknown; value?: unknown; count?: unknown } {
  return v !== null && typeof v === 'object' && ('key' in v || 'value' in v);
}

/** A value of unknown shape (evidence, policy) as short text. */
export function asText(value: unknown): string {
  if (value === null || value === undefined) return '—';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value) && value.length === 0) return '—';
  if (Array.isArray(value) && value.every((v) => typeof v !== 'object' || v === null)) return value.map(asText).join(', ');
  if (Array.isArray(value) && value.every(isCounted)) {
    return value.map((v) => (typeof v.count === 'number' ? `${String(v.key ?? v.value)} (${v.count})` : String(v.key ?? v.value))).join(', ');
  }
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}

/** The alert's trace link, only when it is an absolute http(s) URL; anything else is not a link. */
export function safeHttpUrl(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length > 4096) return undefined;
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : undefined;
  } catch {
    return undefined;
  }
}
