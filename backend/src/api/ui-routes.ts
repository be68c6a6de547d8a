/**
 * The web UI's own pages: the one list that the UI's router (ui/src/router.tsx) matches locations
 * against and that the API reads to answer index.html for them, and 404 for any other path.
 * Pure code, no Node or DOM: it is bundled into the UI as it is.
 */

export type UiRoute =
  | { page: 'identities' }
  | { page: 'identity'; id: string }
  | { page: 'alerts' }
  | { page: 'alert'; id: string }
  | { page: 'trace'; traceId: string }
  | { page: 'not-found' };

/** Each page's path, as segments: a literal, or `:name` for one percent-encoded segment. */
export const UI_ROUTES = [
  { segments: [], page: 'identities' },
  { segments: ['identities'], page: 'identities' },
  { segments: ['identities', ':id'], page: 'identity' },
  { segments: ['alerts'], page: 'alerts' },
  { segments: ['alerts', ':id'], page: 'alert' },
  { segments: ['traces', ':traceId'], page: 'trace' },
] as const;

/** The page a location's path (percent-encoded, as `location.pathname` has it) shows. */
export function matchUiRoute(path: string): UiRoute {
  const parts = path.split('/').filter(Boolean);
  for (const route of UI_ROUTES) {
    if (route.segments.length !== parts.length) continue;
    const params: Record<string, string> = {};
    const fits = route.segments.every((segment: string, i) => {
      if (segment.startsWith(':')) {
        params[segment.slice(1)] = decode(parts[i]!);
        return true;
      }
      return segment === parts[i];
    });
    if (fits) return { page: route.page, ...params } as UiRoute;
  }
  return { page: 'not-found' };
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
