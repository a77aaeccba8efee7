import { Readable } from 'node:stream';
import type { Plugin } from '@hapi/hapi';
import type postgres from 'postgres';
import type { ConnectionService } from '../connections/types.ts';
import { AppError } from '../errors.ts';
import type { Platforms } from '../platforms/registry.ts';
import { deletePersonalData, exportPages, exportSections } from '../store/personal-data.ts';
import { callerIn, documented, exportHeadSchema, exportItemSchemas, exportSchema, withPlatformErrors } from './schemas.ts';
import { authStrategy } from './server.ts';

export interface MePluginOptions { sql: postgres.Sql; connections: ConnectionService; platforms: Platforms }

const internals = {
  // Hapi cannot validate a stream against the route's schema, so every piece is checked as it is
  // written, against the same schemas: a field the contract does not name never reaches the client.
  // A piece that fails ends the stream with an error (the client gets a truncated document, never
  // the field); before the first byte it is a 500 like any failed response validation.
  check(schema: { validate(v: unknown): { error?: Error } }, value: unknown, what: string): void {
    const { error } = schema.validate(value);
    if (error) throw new AppError('INTERNAL', `export ${what} failed its schema: ${error.message}`);
  },

  /**
   * The export as JSON text, byte for byte what JSON.stringify would make of the whole document
   * (same keys, same order), produced a page at a time: the first chunk comes after the first page
   * is read, so a database that is down answers an error status instead of a cut-off 200.
   */
  async* json(sql: postgres.Sql, subject: string, exportedAt: string): AsyncGenerator<string> {
    const head = { subject, exportedAt };
    internals.check(exportHeadSchema, head, 'head');
    let out = JSON.stringify(head).slice(0, -1);
    for (const section of exportSections) {
      out += `,"${section}":[`;
      let sep = '';
      for await (const page of exportPages(sql, subject, section)) {
        for (const item of page) internals.check(exportItemSchemas[section], item, section);
        out += sep + page.map((item) => JSON.stringify(item)).join(',');
        sep = ',';
        yield out;
        out = '';
      }
      out += ']';
    }
    yield `${out}}`;
  },

  async stream(sql: postgres.Sql, subject: string, exportedAt: string): Promise<Readable> {
    const chunks = internals.json(sql, subject, exportedAt);
    const first = await chunks.next();
    async function* rest() {
      if (!first.done) yield first.value;
      yield* chunks;
    }
    // Byte chunks: Hapi refuses object-mode streams. Hapi reads it as the socket drains and
    // destroys it when the client goes away, which ends the generator (no page is read after).
    return Readable.from(rest(), { objectMode: false });
  },
};

/** GET /v1/me/export and DELETE /v1/me: the caller's personal data (API.md, Audit and personal data). */
export const mePlugin: Plugin<MePluginOptions> = {
  name: 'integration-me',
  dependencies: ['integration-auth'],
  register(server, { sql, connections, platforms }) {
    const exportDoc = documented({ 200: { schema: exportSchema, description: 'The export' } }, {});
    server.route({
      method: 'GET', path: '/v1/me/export',
      options: {
        tags: ['api', 'personal data'], auth: authStrategy, description: 'Everything stored about the caller',
        notes: 'Connections, chats, messages, audit entries and every consent decision of the caller as one JSON document; secrets '
          + '(sessions, tokens, 2FA data, machine snapshots) are never included. Streamed a page of rows at a time '
          + '(chunked, no Content-Length), so its size has no limit on the server; each section is read in its '
          + 'listed order, and rows that change while the export runs appear as they were when read.',
        ...exportDoc,
        // The schema documents the answer; the answer is a stream, checked item by item instead.
        response: { ...exportDoc.response, sample: 0 },
      },
      handler: async (request, h) => {
        const exportedAt = new Date().toISOString();
        const body = await internals.stream(sql, callerIn(request).sub, exportedAt);
        return h.response(body).type('application/json; charset=utf-8').header('cache-control', 'no-store')
          .header('content-disposition', `attachment; filename="personal-data-${exportedAt.slice(0, 10)}.json"`);
      },
    });

    server.route({
      method: 'DELETE', path: '/v1/me',
      options: {
        tags: ['api', 'personal data'], auth: authStrategy, description: 'Delete everything of the caller',
        notes: 'Logs every connection out at the platform and stops it, then deletes every connection, secret, chat, '
          + 'message, audit entry and consent decision of the caller, and the salt of the keyed hash that names the caller in '
          + 'the service\'s logs, so no log line written for the caller can be tied to them any more. One audit entry '
          + '`personal-data.erased` stays, under that hash instead of the caller (GET /admin/audit): an erasure happened, and '
          + 'when. Repeating it is harmless (204 again).',
        ...documented({ 204: { description: 'Deleted' } }, withPlatformErrors(platforms)('delete', { 503: 'DEPENDENCY_UNAVAILABLE: nothing or part removed, repeat the call' }),
          { rateLimit: { group: 'manage' } }),
      },
      handler: async (request, h) => {
        const { sub } = callerIn(request);
        const { subjects } = server.plugins['integration-request-log'];
        // The pseudonym this request's log lines carry (set after authentication, or read now).
        const subject = request.app.subject ?? await subjects.hashOf(sub);
        const loggedOut = await connections.removeAll(sub);
        const deleted = await deletePersonalData(sql, sub, subject);
        // Also drops this process's cached hash; other nodes reuse theirs at most a minute longer.
        await subjects.erase(sub);
        request.app.log.info('personal data deleted', { loggedOut, deleted });
        return h.response().code(204);
      },
    });
  },
};
