import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

// What every Meta API shares (Graph API "Handling Errors" guide): the error envelope
// {error: {message, type, code, error_subcode?, fbtrace_id}}, numeric-string object ids, parameters that
// arrive as query string, form, multipart or JSON alike, and `fields` selecting what an object shows.

export interface GraphErrorFields {
  type?: string;
  subcode?: number;
  userTitle?: string;
  userMsg?: string;
  transient?: boolean;
  data?: unknown;
}

export class GraphError extends Error {
  constructor(readonly status: number, readonly code: number, message: string, readonly fields: GraphErrorFields = {}) {
    super(message);
    this.name = 'GraphError';
  }

  envelope(): { error: Record<string, unknown> } {
    const f = this.fields;
    return {
      error: {
        message: this.message,
        type: f.type ?? 'OAuthException',
        code: this.code,
        ...(f.subcode !== undefined ? { error_subcode: f.subcode } : {}),
        ...(f.transient !== undefined ? { is_transient: f.transient } : {}),
        ...(f.userTitle ? { error_user_title: f.userTitle } : {}),
        ...(f.userMsg ? { error_user_msg: f.userMsg } : {}),
        ...(f.data !== undefined ? { error_data: f.data } : {}),
        fbtrace_id: randomBytes(8).toString('base64url'),
      },
    };
  }
}

/** Graph's answer for an id it does not know or the token may not see (code 100, subcode 33). */
export const unknownObject = (id: string, method: string): GraphError =>
  new GraphError(400, 100, `Unsupported ${method.toLowerCase()} request. Object with ID '${id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api`, { type: 'GraphMethodException', subcode: 33 });

export const invalidParam = (message: string, extra: GraphErrorFields = {}): GraphError =>
  new GraphError(400, 100, message, extra);

// Object ids are numeric strings of 17 digits (e.g. IG user 17841405822304914); one counter for every
// kind keeps them unique across the emulator process.
// The base varies per process so ids from two runs do not look alike.
const idBase = 17_841_400_000_000_000n + BigInt(Date.now() % 1_000_000) * 1_000_000n;
let seq = 0n;
export const newId = (): string => String(idBase + ++seq);

export const randomToken = (prefix: string, bytes = 60): string => prefix + randomBytes(bytes).toString('base64url');

/** Graph's timestamp format, e.g. "2017-08-31T18:10:00+0000". */
export const graphTime = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, '+0000');

/** `fields=a,b` selects what an object shows (`id` always); without it, `defaults`. */
export function selectFields(obj: Record<string, unknown>, fields: unknown, defaults: readonly string[]): Record<string, unknown> {
  const wanted = typeof fields === 'string' && fields.trim() ? fields.split(',').map((f) => f.trim()).filter(Boolean) : [...defaults];
  const out: Record<string, unknown> = {};
  for (const f of wanted) if (obj[f] !== undefined) out[f] = obj[f];
  if (obj.id !== undefined) out.id = obj.id;
  return out;
}

export type Params = Record<string, unknown>;

const MAX_BODY = 1024 * 1024;

/** Query string and body merged (the body wins): Graph takes parameters either way. */
export async function readGraphParams(req: IncomingMessage, url: URL): Promise<{ params: Params; raw: Buffer }> {
  const params: Params = Object.fromEntries(url.searchParams);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new GraphError(413, 1, 'Request body too large');
    chunks.push(chunk as Buffer);
  }
  const raw = Buffer.concat(chunks);
  if (raw.length === 0) return { params, raw };
  const type = String(req.headers['content-type'] ?? '');
  if (type.includes('application/json') || (!type && raw.subarray(0, 1).toString() === '{')) {
    try {
      const body = JSON.parse(raw.toString('utf8')) as unknown;
      if (typeof body === 'object' && body !== null && !Array.isArray(body)) Object.assign(params, body);
      return { params, raw };
    } catch {
      throw invalidParam('(#100) The request body is not valid JSON');
    }
  }
  if (type.includes('multipart/form-data')) {
    const form = await new Response(raw, { headers: { 'content-type': type } }).formData().catch(() => {
      throw invalidParam('(#100) The multipart body cannot be parsed');
    });
    for (const [k, v] of form) if (typeof v === 'string') params[k] = v;
    return { params, raw };
  }
  for (const [k, v] of new URLSearchParams(raw.toString('utf8'))) params[k] = v;
  return { params, raw };
}

/** The access token from `access_token` or `Authorization: Bearer|OAuth …`. */
export function accessTokenOf(req: IncomingMessage, params: Params): string | undefined {
  const auth = req.headers.authorization;
  const m = auth ? /^(?:Bearer|OAuth)\s+(\S+)$/i.exec(auth) : null;
  if (m) return m[1];
  return typeof params.access_token === 'string' && params.access_token ? params.access_token : undefined;
}

/** A nested parameter sent as an object (JSON body) or as a JSON string (form field). */
export function objectParam(v: unknown): Record<string, unknown> | undefined {
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  if (typeof v === 'string' && v.trim().startsWith('{')) {
    try {
      const o = JSON.parse(v) as unknown;
      return typeof o === 'object' && o !== null && !Array.isArray(o) ? (o as Record<string, unknown>) : undefined;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

export const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : undefined);

export const truthy = (v: unknown): boolean => v === true || v === 'true' || v === '1' || v === 1;
