import type { ComponentChildren, JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { matchUiRoute, type UiRoute } from '../../src/api/ui-routes.js';

/** Client-side routing with the History API; the server answers index.html for these paths. */

const NAVIGATE = 'conduct:navigate';

export function navigate(to: string): void {
  if (to === location.pathname + location.search) return;
  history.pushState(null, '', to);
  window.dispatchEvent(new Event(NAVIGATE));
  window.scrollTo(0, 0);
}

/**
 * Sets the query of the current page (filters, the graph's window) without a new history entry, so
 * the URL can be shared and reloads show the same view. Empty values are left out.
 */
export function setQuery(values: Record<string, string | undefined>): void {
  const params = new URLSearchParams(location.search);
  for (const [k, v] of Object.entries(values)) {
    if (v === undefined || v === '') params.delete(k);
    else params.set(k, v);
  }
  const qs = params.toString();
  const to = location.pathname + (qs ? `?${qs}` : '');
  if (to === location.pathname + location.search) return;
  history.replaceState(null, '', to);
  window.dispatchEvent(new Event(NAVIGATE));
}

export function useLocation(): { path: string; search: URLSearchParams } {
  const read = () => ({ path: location.pathname, search: new URLSearchParams(location.search) });
  const [loc, setLoc] = useState(read);
  useEffect(() => {
    const update = () => setLoc(read());
    window.addEventListener('popstate', update);
    window.addEventListener(NAVIGATE, update);
    return () => {
      window.removeEventListener('popstate', update);
      window.removeEventListener(NAVIGATE, update);
    };
  }, []);
  return loc;
}

/** Internal paths. Untrusted ids are percent-encoded into one path segment, so they stay paths. */
export const paths = {
  identities: () => '/',
  identity: (id: string) => `/identities/${encodeURIComponent(id)}`,
  alerts: () => '/alerts',
  alert: (id: string) => `/alerts/${encodeURIComponent(id)}`,
  trace: (traceId: string) => `/traces/${encodeURIComponent(traceId)}`,
};

/** The UI's pages: one list, shared with the API, which answers index.html for exactly these paths. */
export type Route = UiRoute;

export function matchRoute(path: string): Route {
  return matchUiRoute(path);
}

export function Link(props: { to: string; class?: string; children: ComponentChildren; title?: string }) {
  const onClick = (e: JSX.TargetedMouseEvent<HTMLAnchorElement>) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(props.to);
  };
  return (
    <a href={props.to} class={props.class} title={props.title} onClick={onClick}>
      {props.children}
    </a>
  );
}
