import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import type { PlatformEmulator } from '../platforms/types.ts';

// Test helpers for the OAuth platform emulators: control calls straight to the emulator object, a browser
// that follows the authorize redirects, PKCE pairs, form posts, and a streaming uploader whose bytes are
// generated on the fly (a 200 MB upload never exists in memory on the client side either).

export async function ctl(emu: PlatformEmulator, method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const answer = await emu.control(method, path, new URLSearchParams(), body ?? {});
  if (!answer) return { status: 404, json: { error: 'not a control path' } };
  return { status: answer.status, json: JSON.parse(JSON.stringify(answer.body)) };
}

/** Follows 302s as a browser would until the location leaves the provider (the app's redirect_uri). */
export async function browse(url: string, stopAt: string): Promise<{ status: number; location?: URL; body?: string }> {
  let next = url;
  for (let hop = 0; hop < 5; hop++) {
    const res = await fetch(next, { redirect: 'manual' });
    const location = res.headers.get('location');
    if (res.status !== 302 || !location) return { status: res.status, body: await res.text() };
    await res.arrayBuffer();
    const target = new URL(location, next);
    if (target.toString().startsWith(stopAt)) return { status: 302, location: target };
    next = target.toString();
  }
  throw new Error('too many redirects');
}

export function pkcePair(): { verifier: string; challenge: string; hexChallenge: string } {
  const verifier = randomBytes(48).toString('base64url');
  const digest = createHash('sha256').update(verifier).digest();
  return { verifier, challenge: digest.toString('base64url'), hexChallenge: digest.toString('hex') };
}

export async function postForm(url: string, params: Record<string, string>, headers: Record<string, string> = {}): Promise<{ status: number; json: any }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(params) });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

export async function postJson(url: string, body: unknown, token?: string): Promise<{ status: number; json: any; headers: Headers }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json; charset=UTF-8', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined, headers: res.headers };
}

/**
 * Deterministic file content, byte i = pattern[i mod pattern.length]; the period is 1 MiB + 7 so it never
 * lines up with 256 KiB blocks or MB chunks. Slices are views of the one pattern buffer: no allocation per chunk.
 */
export class PatternFile {
  private readonly pattern = randomBytes(1024 * 1024 + 7);

  constructor(readonly size: number) {}

  * slices(offset: number, length: number, step = 64 * 1024): Generator<Buffer> {
    let pos = offset;
    const end = offset + length;
    while (pos < end) {
      const at = pos % this.pattern.length;
      const n = Math.min(step, end - pos, this.pattern.length - at);
      yield this.pattern.subarray(at, at + n);
      pos += n;
    }
  }

  sha256(): string {
    const h = createHash('sha256');
    for (const s of this.slices(0, this.size, 1024 * 1024)) h.update(s);
    return h.digest('hex');
  }
}

export interface PutAnswer { status: number; headers: Record<string, string | string[] | undefined>; body: string }

/**
 * PUTs bytes [offset, offset+length) of `file` to `url` with the given headers, streaming with backpressure.
 * `cutAfter` sends only that many bytes and then drops the connection (a crash mid-chunk): resolves undefined.
 */
export function putBytes(url: string, file: PatternFile, offset: number, length: number, headers: Record<string, string>, cutAfter?: number): Promise<PutAnswer | undefined> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'PUT', headers: { 'content-length': String(length), ...headers } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', (err) => (cutAfter === undefined ? reject(err) : resolve(undefined)));
    const send = cutAfter === undefined ? length : Math.min(cutAfter, length);
    const slices = file.slices(offset, send);
    const cut = (): void => {
      req.destroy();
      resolve(undefined);
    };
    const pump = (): void => {
      for (let s = slices.next(); !s.done; s = slices.next()) {
        if (!req.write(s.value)) {
          req.once('drain', pump);
          return;
        }
      }
      if (cutAfter === undefined) req.end();
      // The connection drops once every written byte is on the socket, as when a process is killed.
      else req.write(Buffer.alloc(0), () => setImmediate(cut));
    };
    pump();
  });
}
