import type { Readable } from 'node:stream';
import type { Plugin } from '@hapi/hapi';
import busboy from 'busboy';
import Joi from 'joi';
import type postgres from 'postgres';
import type { MediaConfig } from '../config.ts';
import { AppError } from '../errors.ts';
import { saveFile, type FileLimits } from '../media/files.ts';
import { deleteOwnUpload, getUpload, toApiUpload } from '../store/uploads.ts';
import { callerIn, documented, notFoundOnBadParams, uuid } from './schemas.ts';
import { authStrategy } from './server.ts';

// POST /v1/uploads stores a file for media messages: the raw body (its Content-Type kept), or the
// part named `file` of a multipart/form-data body. The body is streamed to Postgres a chunk at a time
// (src/media/files.ts) and never parsed or held by Hapi: the route takes the request stream as it is.

export interface UploadsPluginOptions {
  sql: postgres.Sql;
  media: Pick<MediaConfig, 'maxBytes' | 'retentionHours' | 'uploadTimeoutMs'>;
}

/** For the listener (listener.ts longRequest): an upload's body has UPLOAD_TIMEOUT_MS to arrive. */
export const uploadDeadline = (timeoutMs: number) => (method: string, url: string): number | undefined =>
  method === 'POST' && /^\/v1\/uploads\/?(?:\?|$)/.test(url) ? timeoutMs : undefined;

const idExample = '3f6c2a1e-9b7d-4e8f-a0b1-c2d3e4f5a6b7';
// A name as a file system would take it: no path, no control characters.
// eslint-disable-next-line no-control-regex -- control characters are what the pattern refuses
const filenameRe = /^[^\u0000-\u001f\u007f/\\]{1,255}$/;
const mimeRe = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/;
// Multipart boundaries and part headers around the file: a body may exceed the file limit by this much.
const multipartSlack = 64 * 1024;

const uploadSchema = Joi.object({
  id: Joi.string().required().example(idExample),
  size: Joi.number().integer().min(0).required().example(3_145_728),
  sha256: Joi.string().required().example('9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'),
  contentType: Joi.string().required().example('application/pdf'),
  filename: Joi.string().required().example('report.pdf'),
  createdAt: Joi.string().isoDate().required().example('2026-11-28T05:00:00.000Z'),
  expiresAt: Joi.string().isoDate().required().example('2026-11-29T05:00:00.000Z'),
}).label('Upload');

const uploadQuery = Joi.object({
  filename: Joi.string().pattern(filenameRe).description('the file name messages show (default: the multipart part\'s, else "file")').example('report.pdf'),
}).label('UploadQuery');

const uploadParams = Joi.object({ id: uuid.required().example(idExample).description('upload id') }).label('UploadIdParams');

interface Source { stream: AsyncIterable<Uint8Array>; contentType: string; filename?: string; finished: () => Promise<void> }

const internals = {
  rateLimit: { rateLimit: { group: 'send' as const } },

  invalid(path: string, message: string): AppError {
    return new AppError('VALIDATION_ERROR', message, { details: [{ path, message }] });
  },

  mime(raw: string | undefined): string {
    const mime = (raw ?? 'application/octet-stream').split(';')[0]!.trim().toLowerCase();
    if (!mimeRe.test(mime)) throw internals.invalid('headers.content-type', 'not a media type (type/subtype)');
    return mime;
  },

  /**
   * The part named `file` of a multipart body, as a stream, once its headers arrived. Any other part
   * (a second file, a text field) makes the request invalid; that is known only when the body ends,
   * which `finished()` waits for.
   */
  multipart(stream: Readable, contentType: string, maxBytes: number): Promise<Source> {
    return new Promise((resolve, reject) => {
      // fileSize one past the limit: busboy cuts a file at the limit, and saveFile must see it go past.
      const bb = busboy({ headers: { 'content-type': contentType }, limits: { files: 1, fields: 0, fileSize: maxBytes + 1 } });
      let problem: AppError | undefined;
      let got = false;
      const closed = new Promise<void>((done, fail) => {
        bb.once('close', done);
        bb.once('error', (err: Error) => fail(internals.invalid('payload', `malformed multipart body: ${err.message}`)));
      });
      closed.catch(() => undefined);
      bb.on('file', (name, file, info) => {
        if (got || name !== 'file') {
          problem ??= internals.invalid(`payload.${name.slice(0, 64)}`, 'the only part taken is one file named "file"');
          file.resume();
          return;
        }
        got = true;
        const filename = info.filename ? info.filename.split(/[/\\]/).at(-1) : undefined;
        let mime: string;
        try {
          mime = internals.mime(info.mimeType);
        } catch (err) {
          file.resume();
          return reject(err);
        }
        resolve({
          stream: file, contentType: mime, ...(filename ? { filename } : {}),
          finished: async () => {
            await closed;
            if (problem) throw problem;
          },
        });
      });
      const extra = () => { problem ??= internals.invalid('payload', 'the only part taken is one file named "file"'); };
      bb.on('fieldsLimit', extra);
      bb.on('filesLimit', extra);
      closed.then(() => { if (!got) reject(problem ?? internals.invalid('payload.file', 'a multipart body needs a part named "file"')); }, reject);
      stream.pipe(bb);
    });
  },
};

/** POST /v1/uploads, GET and DELETE /v1/uploads/{id}: the caller's files for media messages. */
export const uploadsPlugin: Plugin<UploadsPluginOptions> = {
  name: 'integration-uploads',
  dependencies: ['integration-auth', 'integration-rate-limit'],
  register(server, { sql, media }) {
    const tags = ['api', 'uploads'];
    const limits: FileLimits = { maxBytes: media.maxBytes, retentionHours: media.retentionHours, deadlineMs: media.uploadTimeoutMs };
    const maxMb = Math.round(media.maxBytes / 1024 / 1024);

    server.route<{ Query: { filename?: string } }>({
      method: 'POST', path: '/v1/uploads',
      options: {
        tags, auth: authStrategy, description: 'Store a file for media messages',
        notes: `The body is the file (its Content-Type is kept), or multipart/form-data with one part named \`file\`. \`?filename=\` names it `
          + `(else the part's file name, else "file"). At most UPLOAD_MAX_MB (${maxMb} MB): a larger body answers 413 PAYLOAD_TOO_LARGE and nothing `
          + 'is stored. The body may take UPLOAD_TIMEOUT_MS (10 min) to arrive. Use the id as `media.uploadId` of POST /v1/messages. '
          + 'A file is deleted UPLOAD_RETENTION_HOURS (24) after it was stored unless a message not yet sent uses it. Rate group `send`.',
        // The request stream as it is: Hapi neither reads nor limits it (a body over its maxBytes would be
        // read to the end before the 413); the handler streams, counts and refuses.
        payload: { output: 'stream', parse: false, override: 'application/octet-stream', allow: ['application/octet-stream'], maxBytes: Number.MAX_SAFE_INTEGER, timeout: false },
        validate: { query: uploadQuery },
        ...documented({ 201: { schema: uploadSchema, description: 'Stored' } }, {
          400: 'VALIDATION_ERROR (a multipart body without one `file` part, a bad Content-Type or filename)', 408: 'REQUEST_TIMEOUT',
          413: `PAYLOAD_TOO_LARGE: over ${maxMb} MB, nothing stored`, 503: 'DEPENDENCY_UNAVAILABLE',
        }, { ...internals.rateLimit, 'hapi-swagger': { consumes: ['application/octet-stream', 'multipart/form-data'] } }),
      },
      handler: async (request, h) => {
        const { sub } = callerIn(request);
        const body = request.payload as unknown as Readable;
        const header = request.headers['content-type'] as string | undefined;
        const multipart = /^multipart\/form-data\b/i.test(header ?? '');
        const declared = Number((request.headers['content-length'] as string | undefined) ?? NaN);
        if (declared > media.maxBytes + (multipart ? multipartSlack : 0)) {
          throw new AppError('PAYLOAD_TOO_LARGE', `the file is larger than ${maxMb} MB (UPLOAD_MAX_MB)`);
        }
        const source: Source = multipart
          ? await internals.multipart(body, header!, media.maxBytes)
          // Not destroyed when saving stops early (the limit): Hapi would take that for a client that
          // went away and answer nothing; the 413 goes out, then the socket closes.
          : { stream: body.iterator({ destroyOnReturn: false }), contentType: internals.mime(header), finished: async () => undefined };
        const filename = request.query.filename ?? source.filename ?? 'file';
        if (!filenameRe.test(filename)) throw internals.invalid('payload.file', 'the part\'s file name is not a plain name; give ?filename=');
        let row;
        try {
          row = await saveFile(sql, sub, source.stream, { contentType: source.contentType, filename }, limits);
        } catch (err) {
          if (err instanceof AppError) throw err;
          // The client went away or the body broke off: nothing was kept, and nobody reads the answer.
          if (request.raw.req.destroyed || request.raw.req.readableAborted) throw internals.invalid('payload', 'the upload was cut off before its end');
          throw err;
        }
        try {
          await source.finished();
        } catch (err) {
          await deleteOwnUpload(sql, sub, row.id);
          throw err;
        }
        return h.response(toApiUpload(row)).code(201).header('location', `/v1/uploads/${row.id}`);
      },
    });

    server.route<{ Params: { id: string } }>({
      method: 'GET', path: '/v1/uploads/{id}',
      options: {
        tags, auth: authStrategy, description: 'One stored file (its facts, not its bytes)',
        validate: { params: uploadParams, ...notFoundOnBadParams },
        ...documented({ 200: { schema: uploadSchema, description: 'The file' } }, { 404: 'NOT_FOUND (also once deleted)' }),
      },
      handler: async (request) => {
        const row = await getUpload(sql, callerIn(request).sub, request.params.id);
        if (!row) throw new AppError('NOT_FOUND', 'not found');
        return toApiUpload(row);
      },
    });

    server.route<{ Params: { id: string } }>({
      method: 'DELETE', path: '/v1/uploads/{id}',
      options: {
        tags, auth: authStrategy, description: 'Delete a stored file',
        notes: 'Refused (409 INVALID_STATE) while a message not yet sent uses it. Messages already sent keep their media facts. Rate group `manage`.',
        validate: { params: uploadParams, ...notFoundOnBadParams },
        // A change like removing a chat: rate group `manage`.
        ...documented({ 204: { description: 'Deleted' } }, { 404: 'NOT_FOUND', 409: 'INVALID_STATE: a message not yet sent uses it' }, { rateLimit: { group: 'manage' } }),
      },
      handler: async (request, h) => {
        const r = await deleteOwnUpload(sql, callerIn(request).sub, request.params.id);
        if (r === 'missing') throw new AppError('NOT_FOUND', 'not found');
        if (r === 'in-use') throw new AppError('INVALID_STATE', 'a message not yet sent uses this file; it can be deleted once that message is sent, failed or cancelled');
        return h.response().code(204);
      },
    });
  },
};
