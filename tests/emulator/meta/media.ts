import { createHash } from 'node:crypto';

// Instagram, Threads and WhatsApp (media by `link`) download the media themselves from the URL they are
// given. The emulator downloads too, but only from loopback (it must never reach a network), records
// the sha256 of what it got, and fails the way a platform does when the URL is not reachable for it.

export type MediaResult =
  | { ok: true; sha256: string; bytes: number; contentType: string }
  | { ok: false; reason: 'not-loopback' | 'timeout' | 'too-large' | 'http' | 'network'; detail: string };

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

export async function fetchMedia(url: string | undefined, opts: { maxBytes: number; timeoutMs: number }): Promise<MediaResult> {
  let u: URL;
  try {
    u = new URL(url ?? '');
  } catch {
    return { ok: false, reason: 'network', detail: 'not a URL' };
  }
  if (u.protocol !== 'http:' || !LOOPBACK.has(u.hostname)) {
    return { ok: false, reason: 'not-loopback', detail: `the emulator downloads only http://127.0.0.1 URLs, not ${u.protocol}//${u.host}` };
  }
  try {
    // Redirects are not followed: one could lead off loopback.
    const res = await fetch(u, { redirect: 'manual', signal: AbortSignal.timeout(opts.timeoutMs) });
    if (res.status !== 200 || !res.body) {
      await res.arrayBuffer().catch(() => undefined);
      return { ok: false, reason: 'http', detail: `HTTP ${res.status}` };
    }
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      bytes += chunk.length;
      if (bytes > opts.maxBytes) return { ok: false, reason: 'too-large', detail: `more than ${opts.maxBytes} bytes` };
      hash.update(chunk);
    }
    return { ok: true, sha256: hash.digest('hex'), bytes, contentType: res.headers.get('content-type') ?? '' };
  } catch (err) {
    const e = err as Error;
    return e.name === 'TimeoutError' ? { ok: false, reason: 'timeout', detail: `no answer within ${opts.timeoutMs} ms` } : { ok: false, reason: 'network', detail: e.message };
  }
}
