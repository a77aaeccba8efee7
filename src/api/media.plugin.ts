import { Readable } from 'node:stream';
import type { Plugin } from '@hapi/hapi';
import Joi from 'joi';
import type postgres from 'postgres';
import { AppError } from '../errors.ts';
import { readFile } from '../media/files.ts';
import type { MediaLinks } from '../media/links.ts';
import { getUploadForDelivery } from '../store/uploads.ts';
import { uuid } from './schemas.ts';

// GET /v1/media/{uploadId}?exp=&sig= — a stored file for a platform that downloads a post's media
// (Instagram, Threads). No bearer token: the signed, expiring link is the proof (src/media/links.ts).
// A bad, expired or foreign signature answers 404 like an unknown file: the link reveals nothing else.

export interface MediaPluginOptions { sql: postgres.Sql; links: MediaLinks }

export const mediaPlugin: Plugin<MediaPluginOptions> = {
  name: 'integration-media-links',
  register(server, { sql, links }) {
    server.route<{ Params: { id: string }; Query: { exp: number; sig: string } }>({
      method: 'GET', path: '/v1/media/{id}',
      options: {
        tags: ['api', 'messages'], auth: false,
        description: 'A stored file, by a signed link (for platforms that download media)',
        notes: 'The link is made by the service when a platform must fetch a message\'s file (Instagram, Threads); it expires '
          + '(`exp`, Unix seconds, one hour) and opens that file only. Unknown, expired or badly signed: 404.',
        validate: {
          params: Joi.object({ id: uuid.required() }),
          query: Joi.object({ exp: Joi.number().integer().min(0).required(), sig: Joi.string().max(1024).required() }),
          failAction: () => { throw new AppError('NOT_FOUND', 'No such file'); },
        },
        plugins: { 'hapi-swagger': { responses: { 200: { description: 'The file' }, 404: { description: 'NOT_FOUND' } } } },
      },
      handler: async (request, h) => {
        const { id } = request.params;
        if (!(await links.valid(id, request.query.exp, request.query.sig))) throw new AppError('NOT_FOUND', 'No such file');
        const u = await getUploadForDelivery(sql, id);
        if (!u) throw new AppError('NOT_FOUND', 'No such file');
        return h.response(Readable.from(readFile(sql, id), { objectMode: false })).type(u.content_type).header('content-length', String(u.size)).header('cache-control', 'private, no-store');
      },
    });
  },
};
