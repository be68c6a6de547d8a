import { useEffect, useState } from 'preact/hooks';
import { api } from './api.js';
import { authState, onAuthChange } from './auth.js';
import { TokenForm } from './components/token-form.js';
import { useApi } from './hooks.js';
import { AlertPage } from './pages/alert.js';
import { AlertsPage, ALERTS_POLL_MS } from './pages/alerts.js';
import { IdentitiesPage } from './pages/identities.js';
import { IdentityPage } from './pages/identity.js';
import { TracePage } from './pages/trace.js';
import { Link, matchRoute, paths, useLocation } from './router.js';

function OpenAlertCount() {
  const open = useApi(() => api.alerts({ status: 'open', limit: 500 }), [], ALERTS_POLL_MS);
  const n = open.data?.length ?? 0;
  return n > 0 ? (
    <span class="badge sev-high" data-testid="open-alerts" title="open alerts">
      {n >= 500 ? '500+' : n}
    </span>
  ) : null;
}

function Page() {
  const { path } = useLocation();
  const route = matchRoute(path);
  switch (route.page) {
    case 'identities':
      return <IdentitiesPage />;
    case 'identity':
      return <IdentityPage id={route.id} key={route.id} />;
    case 'alerts':
      return <AlertsPage />;
    case 'alert':
      return <AlertPage id={route.id} key={route.id} />;
    case 'trace':
      return <TracePage traceId={route.traceId} key={route.traceId} />;
    default:
      return (
        <main>
          <h1>Not found</h1>
          <p>
            <Link to={paths.identities()}>Back to identities</Link>
          </p>
        </main>
      );
  }
}

export function App() {
  const [auth, setAuth] = useState(authState);
  // Remount every page after a token is given, so each reloads with it.
  const [session, setSession] = useState(0);
  useEffect(
    () =>
      onAuthChange(() => {
        const next = authState();
        setAuth(next);
        if (!next.needed) setSession((s) => s + 1);
      }),
    [],
  );
  const { path } = useLocation();
  return (
    <>
      <nav class="top">
        <Link to={paths.identities()} class="brand">
          conduct
        </Link>
        <Link to={paths.identities()} class={path === '/' || path.startsWith('/identities') ? 'active' : undefined}>
          Identities
        </Link>
        <Link to={paths.alerts()} class={path.startsWith('/alerts') ? 'active' : undefined}>
          Alerts
        </Link>
        {!auth.needed && <OpenAlertCount key={session} />}
      </nav>
      {auth.needed ? <TokenForm rejected={auth.rejected} /> : <Page key={session} />}
    </>
  );
}
