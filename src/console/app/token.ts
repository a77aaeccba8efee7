// Sign-in state. The token lives in sessionStorage (gone when the tab closes, never a cookie) and
// leaves the page only as `Authorization: Bearer` or the WebSocket's `bearer` subprotocol header.
const key = 'integration-console.token';

// `#token=<jwt>` lets an operator open a ready link; it is read once and wiped from the address
// bar and history so that it does not linger in screenshots or get copied along with the URL.
export const takeTokenFromHash = (): string | null => {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get('token');
  if (token === null) return null;
  params.delete('token');
  const rest = params.toString();
  history.replaceState(null, '', location.pathname + location.search + (rest ? `#${rest}` : ''));
  return token.trim() || null;
};

export const loadToken = (): string | null => {
  try {
    return sessionStorage.getItem(key);
  } catch {
    return null;
  }
};

export const saveToken = (token: string): void => {
  try {
    sessionStorage.setItem(key, token);
  } catch {
    // Storage disabled: the token then lives in memory only, for this page load.
  }
};

export const clearToken = (): void => {
  try {
    sessionStorage.removeItem(key);
  } catch {
    // nothing stored
  }
};

// Shows who is signed in without verifying anything (the server does that): the `sub` claim.
export const tokenSubject = (token: string): string | null => {
  try {
    const payload = token.split('.')[1] ?? '';
    const json = JSON.parse(atob(payload.replace(/-/g, '+').replace(/_/g, '/'))) as { sub?: unknown };
    return typeof json.sub === 'string' ? json.sub : null;
  } catch {
    return null;
  }
};

// Whether to show the admin pages: the `scope` claim names `admin` (space-separated string or array).
// Only a hint for the UI: the server answers 403 to /admin/* without the scope, whatever this says.
export const tokenIsAdmin = (token: string): boolean => {
  try {
    const payload = token.split('.')[1] ?? '';
    const json = JSON.parse(atob(payload.replace(/-/g, '+').replace(/_/g, '/'))) as { scope?: unknown };
    const scopes = Array.isArray(json.scope) ? json.scope : typeof json.scope === 'string' ? json.scope.split(' ') : [];
    return scopes.includes('admin');
  } catch {
    return false;
  }
};
