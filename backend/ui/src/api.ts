import { getToken, tokenRequired } from './auth.js';
import type { Alert, Chain, DeadDeliveriesAnswer, Graph, GraphComparison, IdentityDetail, IdentitySummary, TraceAnswer, Verdict } from './api-types.js';

/** An answer other than 2xx, carrying the status so pages can say "not found" rather than fail. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

const seg = (s: string) => encodeURIComponent(s);

/** Alerts searched when the API cannot answer one alert by id. */
const ALERT_LOOKUP_LIMIT = 1000;

async function request<T>(path: string, init: RequestInit = {}): Promise<T> {
  const headers = new Headers(init.headers);
  headers.set('Accept', 'application/json');
  const token = getToken();
  if (token) headers.set('Authorization', `Bearer ${token}`);
  const res = await fetch(path, { ...init, headers, credentials: 'same-origin' });
  if (res.status === 401) {
    tokenRequired();
    throw new ApiError(401, 'the API needs a token');
  }
  if (!res.ok) {
    let message = `${res.status} ${res.statusText}`;
    try {
      const body = (await res.json()) as { error?: unknown; message?: unknown };
      const detail = body.error ?? body.message;
      if (typeof detail === 'string') message = detail;
    } catch {
      // Not JSON; keep the status line.
    }
    throw new ApiError(res.status, message);
  }
  if (res.status === 204) return undefined as T;
  // A path the API does not know may be answered by the UI's index.html fallback.
  if (!(res.headers.get('content-type') ?? '').includes('json')) throw new ApiError(404, 'not an API answer');
  return (await res.json()) as T;
}

export interface AlertQuery {
  identity?: string;
  detector?: string;
  status?: string;
  severity?: string;
  traceId?: string;
  q?: string;
  since?: string;
  until?: string;
  sort?: string;
  limit?: number;
}

/** Which of an identity's chains to read: a window of event time and the peer, service or operation they reached. */
export interface ChainQuery {
  limit?: number;
  since?: string;
  until?: string;
  peer?: string;
  service?: string;
  operation?: string;
}

/** Query string of the defined, non-empty values. */
function query(q: object): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== '') params.set(k, String(v));
  const qs = params.toString();
  return qs ? `?${qs}` : '';
}

export const api = {
  identities: () => request<{ identities: IdentitySummary[] }>('/api/v1/identities').then((r) => r.identities ?? []),
  identity: (id: string) => request<IdentityDetail>(`/api/v1/identities/${seg(id)}`),
  graph: (id: string) => request<Graph>(`/api/v1/identities/${seg(id)}/graph`),
  /** The identity's graph in a window of event time against its baseline. */
  compare: (id: string, since: string, until: string) =>
    request<GraphComparison>(`/api/v1/identities/${seg(id)}/graph${query({ since, until, compare: 'baseline' })}`),
  chains: (id: string, q: ChainQuery = {}) =>
    request<{ chains: Chain[] }>(`/api/v1/identities/${seg(id)}/chains${query({ limit: 20, ...q })}`).then((r) => r.chains ?? []),
  trace: (traceId: string) => request<TraceAnswer>(`/api/v1/traces/${seg(traceId)}`),
  alerts: (q: AlertQuery = {}) => request<{ alerts: Alert[] }>(`/api/v1/alerts${query(q)}`).then((r) => r.alerts ?? []),
  /** One alert; where the API has no `GET /api/v1/alerts/{id}`, it is looked up in the list. */
  alert: async (id: string): Promise<Alert> => {
    try {
      return await request<Alert>(`/api/v1/alerts/${seg(id)}`);
    } catch (e) {
      if (!(e instanceof ApiError) || (e.status !== 404 && e.status !== 405)) throw e;
      const all = await request<{ alerts: Alert[] }>(`/api/v1/alerts?limit=${ALERT_LOOKUP_LIMIT}`);
      const found = all.alerts?.find((a) => a.id === id);
      if (!found) throw e;
      return found;
    }
  },
  feedback: (id: string, verdict: Verdict) =>
    request<unknown>(`/api/v1/alerts/${seg(id)}/feedback`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ verdict }),
    }),
  /** An operator's retry (`retry`) or discard (`discard`) of one dead delivery. */
  deadDelivery: (id: string, action: 'retry' | 'discard', sink: string, seq: number) =>
    request<DeadDeliveriesAnswer>(`/api/v1/alerts/${seg(id)}/deliveries/${action}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ sink, seq }),
    }),
};
