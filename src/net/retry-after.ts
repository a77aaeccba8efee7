// Retry-After (RFC 9110 §10.2.3): delay-seconds or an HTTP-date. One reading for every HTTP client of
// the service (webhook deliveries, Google, TikTok).

/** Milliseconds from now; undefined when absent or unreadable. */
export function retryAfterMs(value: string | null | undefined, nowMs = Date.now()): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  if (/^\d{1,10}$/.test(v)) return Number(v) * 1000;
  // The three HTTP-date forms start with the day's name; Date.parse alone takes '1.5' for a date in 2001.
  if (!/^[A-Za-z]{3}/.test(v)) return undefined;
  // asctime-date carries no zone; HTTP dates are all GMT (Date.parse would read it as local time).
  const at = Date.parse(/GMT$/i.test(v) ? v : `${v} GMT`);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

/** Whole seconds, at least 1; the fallback when absent or unreadable. */
export function retryAfterSeconds(value: string | null | undefined, fallbackS: number, nowMs = Date.now()): number {
  const ms = retryAfterMs(value, nowMs);
  return ms === undefined ? fallbackS : Math.max(1, Math.ceil(ms / 1000));
}
