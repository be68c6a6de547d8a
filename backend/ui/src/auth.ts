/**
 * The API token, when `api.token` is set: asked for once, kept in sessionStorage for the tab's
 * session and sent as `Authorization: Bearer`. Components subscribe to learn when it is needed.
 */

const STORAGE_KEY = 'conduct.token';

type Listener = () => void;
const listeners = new Set<Listener>();
let needed = false;
let rejected = false;

export function getToken(): string | null {
  try {
    return sessionStorage.getItem(STORAGE_KEY);
  } catch {
    return null;
  }
}

export function setToken(token: string): void {
  try {
    sessionStorage.setItem(STORAGE_KEY, token);
  } catch {
    // Storage may be disabled; the token then lasts until the next 401.
  }
  needed = false;
  emit();
}

/** Called by the API client on a 401. */
export function tokenRequired(): void {
  if (needed) return; // several requests may fail at once; ask once
  rejected = getToken() !== null;
  try {
    sessionStorage.removeItem(STORAGE_KEY);
  } catch {
    // Storage disabled: nothing kept.
  }
  needed = true;
  emit();
}

export function authState(): { needed: boolean; rejected: boolean } {
  return { needed, rejected };
}

export function onAuthChange(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function emit(): void {
  for (const l of listeners) l();
}
