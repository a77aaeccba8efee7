import type { Plugin } from '@hapi/hapi';
import Joi from 'joi';
import type postgres from 'postgres';
import type { ConnectionService } from '../connections/types.ts';
import { AppError } from '../errors.ts';
import { currentConsent, currentConsents, purposes, recordConsent, toConsent, type Purpose } from '../store/consents.ts';
import { callerIn, consentSchema, documented } from './schemas.ts';
import { authStrategy } from './server.ts';

declare module '@hapi/hapi' {
  interface PluginSpecificConfiguration {
    /** The route acts on the caller's behalf: it needs this consent (see consentsPlugin). */
    consent?: Purpose;
  }
}

export interface ConsentsPluginOptions {
  sql: postgres.Sql;
  connections: ConnectionService;
  /** CONSENT_REQUIRED: a caller who never decided counts as not consenting. */
  consentRequired?: boolean;
}

interface Decision { granted: boolean; version: string }

const consentList = Joi.object({ items: Joi.array().items(consentSchema).required() }).label('ConsentList');

const purposeParams = Joi.object({
  purpose: Joi.string().valid(...purposes).required().example('processing')
    .description('processing: connecting accounts and sending on your behalf; message-retention: keeping message texts up to RETENTION_DAYS'),
}).label('ConsentPurposeParams');

const decisionSchema = Joi.object({
  granted: Joi.boolean().required().example(true),
  // A version names a text the product showed (a date, v3, 1.2): short, no spaces or markup.
  version: Joi.string().max(64).pattern(/^[A-Za-z0-9][\w.:+-]*$/).required().example('2026-05-01')
    .messages({ 'string.pattern.base': '"version" is letters, digits and . _ : + - (e.g. 2026-05-01 or v3)' }),
}).label('ConsentDecision');

const withdrawn = { code: 'CONSENT_WITHDRAWN', message: 'The consent to processing was withdrawn; grant it again, then reconnect' } as const;

/**
 * GET /v1/me/consents and PUT /v1/me/consents/{purpose} (API.md "Consent (GDPR)"), and the gate of
 * the routes that act on the caller's behalf: a route with `plugins: { consent: 'processing' }`
 * (creating a connection, sending, reconnecting) answers 403 CONSENT_REQUIRED when the decision in
 * force withdraws that consent, or, with CONSENT_REQUIRED=true, when the caller never granted it.
 */
export const consentsPlugin: Plugin<ConsentsPluginOptions> = {
  name: 'integration-consents',
  dependencies: ['integration-auth'],
  register(server, { sql, connections, consentRequired = false }) {
    const tags = ['api', 'personal data'];

    // After validation (malformed input is a 400 whatever the consent), before the handler.
    server.ext('onPreHandler', async (request, h) => {
      const purpose = request.route.settings.plugins?.consent;
      const sub = request.auth.credentials?.user?.sub;
      if (!purpose || typeof sub !== 'string') return h.continue;
      const current = await currentConsent(sql, sub, purpose);
      if (current ? current.granted : !consentRequired) return h.continue;
      throw new AppError('CONSENT_REQUIRED', current
        ? `The consent to ${purpose} was withdrawn; grant it again (PUT /v1/me/consents/${purpose})`
        : `This needs your consent to ${purpose} (PUT /v1/me/consents/${purpose})`);
    });

    server.route({
      method: 'GET', path: '/v1/me/consents',
      options: {
        tags, auth: authStrategy, description: 'Own consent decisions in force',
        notes: 'One item per purpose the caller decided on (the newest decision); a purpose never decided is absent and '
          + 'counts as not granted when CONSENT_REQUIRED=true. The whole history is in GET /v1/me/export.',
        ...documented({ 200: { schema: consentList, description: 'The decisions in force' } }, {}),
      },
      handler: async (request) => ({ items: (await currentConsents(sql, callerIn(request).sub)).map(toConsent) }),
    });

    server.route<{ Params: { purpose: Purpose }; Payload: Decision }>({
      method: 'PUT', path: '/v1/me/consents/{purpose}',
      options: {
        tags, auth: authStrategy, description: 'Grant or withdraw a consent',
        notes: 'Records the decision with its time and the caller (history kept, audited, exported); answers the decision. '
          + 'Withdrawing `processing` stops every connection of the caller (status `stopped`, error CONSENT_WITHDRAWN) and '
          + 'refuses creating connections, sending and reconnecting with 403 CONSENT_REQUIRED until it is granted again; '
          + 'the connections stay stopped until reconnected. Withdrawing `message-retention` blanks the text of every message '
          + 'already sent or failed, and of each later message as soon as it is sent or fails. Rate group `manage`.',
        validate: { params: purposeParams, payload: decisionSchema },
        ...documented({ 200: { schema: consentSchema, description: 'The decision recorded' } }, { 400: 'VALIDATION_ERROR (also an unknown purpose)' },
          { rateLimit: { group: 'manage' } }),
      },
      handler: async (request) => {
        const { sub } = callerIn(request);
        const { purpose } = request.params;
        const { granted, version } = request.payload;
        const { consent, blanked } = await recordConsent(sql, { owner: sub, purpose, version, granted });
        const stopped = purpose === 'processing' && !granted ? await connections.stopAll(sub, withdrawn) : 0;
        request.app.log.info('consent recorded', { consent: { purpose, granted, version }, connectionsStopped: stopped, textsBlanked: blanked });
        return toConsent(consent);
      },
    });
  },
};
