import type { Plugin } from '@hapi/hapi';
import { AppError, type ErrorDetail } from '../errors.ts';
import { redactName } from '../observability/redact.ts';

// Checks every request once, before route validation, for what no route accepts and some part of
// the stack handles badly (a 1 MiB body is the limit; times measured on this 2-core machine):
// - NUL: Postgres text and jsonb cannot hold it; a string carrying one that reached a query made it
//   throw (`?owner=%00`, a NUL in a body field or key gave 500).
// - Field names over 128 characters: no schema has one, and Hapi HTML-escapes the path of every
//   validation failure a character at a time (Hoek.escapeHtml): one 1 MiB key held the loop ~130 ms.
// - Objects over 256 fields, arrays over 1,000 elements: no schema takes that many (batches hold 500
//   messages), and Joi reports every unknown field: 90,000 of them held the loop ~600 ms.
// - Nesting deeper than 32 levels (schemas nest 3): a walk 500,000 deep allocated its way to ~1 s.
// In the path → 404 (as any malformed id); in the query or body → 400 VALIDATION_ERROR.

const maxKeyLength = 128;
const maxKeys = 256;
const maxItems = 1000;
const maxDepth = 32;

type Detail = Pick<ErrorDetail, 'message' | 'type'>;
const nul: Detail = { message: 'must not contain NUL characters', type: 'string.nul' };
const longKey: Detail = { message: `field names are at most ${maxKeyLength} characters`, type: 'object.unknown' };
const manyKeys: Detail = { message: `at most ${maxKeys} fields`, type: 'object.max' };
const manyItems: Detail = { message: `at most ${maxItems} elements`, type: 'array.max' };
const tooDeep: Detail = { message: `nested deeper than ${maxDepth} levels`, type: 'object.depth' };

/** One container being walked: its keys (undefined for an array) and the position reached. */
interface Frame { value: Record<string, unknown> | unknown[]; keys?: string[]; at: number }

const isContainer = (v: unknown): v is Record<string, unknown> | unknown[] =>
  // Parsed JSON and query objects only; a raw or streamed payload is the route's business.
  typeof v === 'object' && v !== null && !Buffer.isBuffer(v) && typeof (v as { pipe?: unknown }).pipe !== 'function';

/** Path of the entry each frame is at, outermost first (frame.at is one past the entry). */
function pathOf(frames: Frame[], inside = false): string[] {
  return frames.slice(0, inside ? -1 : undefined).map((f) => redactName(f.keys ? f.keys[f.at - 1]! : String(f.at - 1)));
}

/** The first problem and its path, depth first, without allocating per element (250,000 numbers: ~10 ms). */
function inspect(root: unknown): { path: string[]; detail: Detail } | undefined {
  if (typeof root === 'string') return root.includes('\0') ? { path: [], detail: nul } : undefined;
  if (!isContainer(root)) return undefined;
  const frames: Frame[] = [];
  const enter = (value: Record<string, unknown> | unknown[]): Detail | undefined => {
    const keys = Array.isArray(value) ? undefined : Object.keys(value);
    frames.push({ value, ...(keys && { keys }), at: 0 });
    if (frames.length > maxDepth) return tooDeep;
    if (keys ? keys.length > maxKeys : (value as unknown[]).length > maxItems) return keys ? manyKeys : manyItems;
    return undefined;
  };
  let problem = enter(root);
  if (problem) return { path: [], detail: problem };
  while (frames.length > 0) {
    const frame = frames.at(-1)!;
    const { keys, value } = frame;
    if (frame.at >= (keys ?? (value as unknown[])).length) {
      frames.pop();
      continue;
    }
    const key = keys?.[frame.at];
    const item = key === undefined ? (value as unknown[])[frame.at] : (value as Record<string, unknown>)[key];
    frame.at += 1;
    if (key !== undefined && (key.includes('\0') || key.length > maxKeyLength)) return { path: pathOf(frames), detail: key.includes('\0') ? nul : longKey };
    if (typeof item === 'string') {
      if (item.includes('\0')) return { path: pathOf(frames), detail: nul };
    } else if (isContainer(item) && (problem = enter(item))) {
      return { path: pathOf(frames, true), detail: problem };
    }
  }
  return undefined;
}

const refused = (path: string[], detail: Detail) => new AppError('VALIDATION_ERROR', 'request validation failed', {
  details: [{ path: path.join('.'), message: detail === nul ? detail.message : `"${path.at(-1)}" ${detail.message}`, type: detail.type }],
});

export const inputPlugin: Plugin<void> = {
  name: 'integration-input',
  register(server) {
    server.ext('onPostAuth', (request, h) => {
      if (inspect(request.params)) throw new AppError('NOT_FOUND', 'not found');
      const inQuery = inspect(request.query);
      if (inQuery) throw refused(['query', ...inQuery.path], inQuery.detail);
      const inBody = inspect(request.payload);
      // Body paths carry no `payload.` prefix, as in the other validation details.
      if (inBody) throw refused(inBody.path.length > 0 ? inBody.path : ['payload'], inBody.detail);
      return h.continue;
    });
  },
};
