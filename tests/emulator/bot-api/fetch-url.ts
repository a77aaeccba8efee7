import { createHash } from 'node:crypto';

// A file the Bot API is asked to fetch by URL (sendPhoto photo=http://…). The emulator reaches no
// network: only this machine's addresses are fetched; anything else fails as an unreachable URL would.
// Streamed through SHA-256 with the type's limit; nothing of the file is kept.

const loopback = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** The file's facts; 'too-large' past `maxBytes`; undefined when it cannot be fetched. */
export async function fetchLocal(raw: string, maxBytes: number): Promise<{ size: number; sha256: string; filename?: string; mimeType?: string } | 'too-large' | undefined> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return undefined;
  }
  if (!loopback.has(url.hostname)) return undefined;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(30_000) });
    if (!res.ok || !res.body) return undefined;
    if (Number(res.headers.get('content-length') ?? 0) > maxBytes) {
      await res.body.cancel();
      return 'too-large';
    }
    const hash = createHash('sha256');
    let size = 0;
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      size += chunk.length;
      if (size > maxBytes) return 'too-large';
      hash.update(chunk);
    }
    const name = url.pathname.split('/').filter(Boolean).at(-1);
    const type = res.headers.get('content-type')?.split(';')[0]?.trim();
    return { size, sha256: hash.digest('hex'), ...(name ? { filename: name } : {}), ...(type ? { mimeType: type } : {}) };
  } catch {
    return undefined;
  }
}
