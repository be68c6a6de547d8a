import { useMemo, useState } from 'preact/hooks';
import { learningProgress, type IdentitySummary } from '../api-types.js';
import { api } from '../api.js';
import { Ids, Loading, Problem, Time } from '../components/bits.js';
import { useApi } from '../hooks.js';
import { Link, paths } from '../router.js';

const POLL_MS = 5000;

type SortKey = 'id' | 'kind' | 'status' | 'lastSeen' | 'calls' | 'peers' | 'openAlerts';
const COLUMNS: { key: SortKey; label: string; numeric?: boolean }[] = [
  { key: 'id', label: 'identity' },
  { key: 'kind', label: 'kind' },
  { key: 'status', label: 'state' },
  { key: 'lastSeen', label: 'last seen (event time)' },
  { key: 'calls', label: 'calls', numeric: true },
  { key: 'peers', label: 'peers', numeric: true },
  { key: 'openAlerts', label: 'open alerts', numeric: true },
];

function compare(a: IdentitySummary, b: IdentitySummary, key: SortKey): number {
  const x = a[key];
  const y = b[key];
  if (typeof x === 'number' && typeof y === 'number') return x - y;
  return String(x ?? '').localeCompare(String(y ?? ''));
}

function State(props: { identity: IdentitySummary }) {
  const { identity } = props;
  const compromised = identity.compromised ? <span class="badge sev-critical">compromised</span> : null;
  if (identity.status !== 'learning') {
    return (
      <span class="state enforcing">
        {identity.status} {compromised}
      </span>
    );
  }
  const p = learningProgress(identity);
  return (
    <span class="state learning">
      learning <progress max={1} value={p} aria-label="learning progress" /> {Math.round(p * 100)}% {compromised}
    </span>
  );
}

export function IdentitiesPage() {
  const { data, error, loading } = useApi(api.identities, [], POLL_MS);
  const [query, setQuery] = useState('');
  const [kind, setKind] = useState('');
  const [state, setState] = useState('');
  const [sort, setSort] = useState<{ key: SortKey; desc: boolean }>({ key: 'openAlerts', desc: true });

  const kinds = useMemo(() => [...new Set((data ?? []).map((i) => i.kind))].sort(), [data]);
  const rows = useMemo(() => {
    const q = query.trim().toLowerCase();
    const list = (data ?? []).filter(
      (i) =>
        (!q || i.id.toLowerCase().includes(q) || (i.displayName ?? '').toLowerCase().includes(q)) &&
        (!kind || i.kind === kind) &&
        (!state || i.status === state),
    );
    list.sort((a, b) => {
      const c = compare(a, b, sort.key) || a.id.localeCompare(b.id);
      return sort.desc ? -c : c;
    });
    return list;
  }, [data, query, kind, state, sort]);

  const sortBy = (key: SortKey) =>
    setSort((s) => (s.key === key ? { key, desc: !s.desc } : { key, desc: COLUMNS.find((c) => c.key === key)?.numeric ?? false }));

  return (
    <main>
      <h1>Identities</h1>
      <div class="filters">
        <input
          type="search"
          placeholder="search by id"
          aria-label="search by id"
          value={query}
          onInput={(e) => setQuery((e.target as HTMLInputElement).value)}
        />
        <select aria-label="kind" value={kind} onChange={(e) => setKind((e.target as HTMLSelectElement).value)}>
          <option value="">all kinds</option>
          {kinds.map((k) => (
            <option value={k} key={k}>
              {k}
            </option>
          ))}
        </select>
        <select aria-label="state" value={state} onChange={(e) => setState((e.target as HTMLSelectElement).value)}>
          <option value="">all states</option>
          <option value="learning">learning</option>
          <option value="enforcing">enforcing</option>
        </select>
        <span class="muted">
          {rows.length} of {data?.length ?? 0}
        </span>
      </div>
      <Problem error={error} what="identities" />
      <Loading when={loading && !data} />
      {data && (
        <table class="table" data-testid="identities">
          <thead>
            <tr>
              {COLUMNS.map((c) => (
                <th
                  key={c.key}
                  class={c.numeric ? 'num' : undefined}
                  aria-sort={sort.key === c.key ? (sort.desc ? 'descending' : 'ascending') : 'none'}
                >
                  <button type="button" class="sort" onClick={() => sortBy(c.key)}>
                    {c.label}
                    {sort.key === c.key ? (sort.desc ? ' ▾' : ' ▴') : ''}
                  </button>
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {rows.map((i) => (
              <tr key={i.id} data-identity={i.id}>
                <td>
                  <Link to={paths.identity(i.id)} class="mono">
                    <Ids text={i.id} />
                  </Link>
                  {i.displayName && i.displayName !== i.id && <div class="muted">{i.displayName}</div>}
                </td>
                <td>{i.kind}</td>
                <td>
                  <State identity={i} />
                </td>
                <td>
                  <Time value={i.lastSeen} />
                </td>
                <td class="num">{i.calls}</td>
                <td class="num">{i.peers}</td>
                <td class="num">{i.openAlerts > 0 ? <span class="badge sev-high">{i.openAlerts}</span> : 0}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {data && data.length === 0 && <p class="muted">No identities yet: send traces to the OTLP receivers.</p>}
    </main>
  );
}
