import type { Lifecycle, ReqRef, Request, ResponseToolkit, RouteOptions } from '@hapi/hapi';
import Joi from 'joi';
import { AppError } from '../errors.ts';
import type { Operation } from '../platforms/adapter.ts';
import type { Platforms } from '../platforms/registry.ts';
import { purposes } from '../store/consents.ts';
import { callerOf, errorResponses, validation, type Caller } from './server.ts';

// Joi schemas and OpenAPI documentation shared by the resource routes (connections, chats, audit,
// personal data, admin). Response schemas are strict: a field the contract does not name (a login
// hash, a session) makes the answer fail validation (500) instead of reaching the client.

const iso = (example: string) => Joi.string().isoDate().example(example);
const uuidExample = '0b8f2f8e-6a4f-4c33-9a57-3b9f2d1c7e10';

/** callerOf for routes typed with `server.route<{ Params, Query, Payload }>` (its parameter is the untyped Request). */
export const callerIn = <Refs extends ReqRef>(request: Request<Refs>): Caller => callerOf(request as unknown as Request);

/** Ids in paths are UUIDs; see `notFoundOnBadParams` for why a malformed one is a 404. */
export const uuid = Joi.string().guid({ version: ['uuidv1', 'uuidv2', 'uuidv3', 'uuidv4', 'uuidv5', 'uuidv7', 'uuidv8'], separator: '-' });

export const idParams = Joi.object({ id: uuid.required().example(uuidExample).description('connection id') }).label('ConnectionIdParams');
export const chatParams = Joi.object({
  id: uuid.required().example(uuidExample).description('connection id'),
  chatId: uuid.required().example('7a1c9d3e-2b4f-4e6a-8c0d-1e2f3a4b5c6d').description('chat id'),
}).label('ChatIdParams');
export const actorParams = Joi.object({ id: uuid.required().example(uuidExample).description('actor id (= connection id)') }).label('ActorIdParams');

/**
 * Route-level `validate.failAction`: a path parameter that fails validation answers 404 NOT_FOUND,
 * exactly as a well-formed id of another owner does, so probing ids learns nothing (API.md). Hapi
 * validates params before query and payload, so a bad id is a 404 whatever the body; every other
 * failure keeps the shell's 400 VALIDATION_ERROR with details.
 */
export const notFoundOnBadParams = {
  ...validation,
  failAction: (_request: Request, _h: ResponseToolkit, err?: Error): Lifecycle.ReturnValue => {
    const source = (err as { output?: { payload?: { validation?: { source?: string } } } } | undefined)?.output?.payload?.validation?.source;
    if (source === 'params') throw new AppError('NOT_FOUND', 'not found');
    throw err;
  },
};

// ---------------------------------------------------------------------------------------------
// Connections

const statuses = ['connecting', 'awaiting-code', 'awaiting-qr', 'awaiting-2fa', 'awaiting-authorization', 'active', 'error', 'stopped'] as const;
const errorInfo = Joi.object({ code: Joi.string().required(), message: Joi.string().required(), retryAt: Joi.string().isoDate() }).label('ErrorInfo');

export const connectionSchema = Joi.object({
  id: Joi.string().required().example(uuidExample),
  platform: Joi.string().required().example('telegram'),
  kind: Joi.string().required().example('user').description("the platform's connection kind (Telegram: user, bot)"),
  status: Joi.string().valid(...statuses).required().example('awaiting-code'),
  statusSince: iso('2026-11-28T05:00:00.000Z').required(),
  displayName: Joi.string().allow(null, '').required().example('Alice'),
  username: Joi.string().example('alice'),
  platformUserId: Joi.string().example('777000123'),
  phone: Joi.string().description('always masked').example('+12******0123'),
  login: Joi.object({
    method: Joi.string().valid('phone', 'qr', 'oauth').required(),
    authorizeUrl: Joi.string().description('OAuth platforms, while awaiting-authorization: open it in a browser (state single use, 10 min)'),
    codeType: Joi.string().valid('app', 'sms', 'call', 'flash-call', 'missed-call', 'email', 'fragment')
      .description('how the code was sent: in the Telegram app, by SMS, a call, a flash or missed call (the code is in the caller\'s number), e-mail, or Fragment'),
    nextCodeType: Joi.string().valid('sms', 'call', 'flash-call', 'missed-call', 'fragment').description('how POST …/code/resend would send it; absent when there is no other way'),
    codeLength: Joi.number().integer().min(1).example(5),
    resendAfter: Joi.string().isoDate().description('a resend before this time answers 429'),
    qr: Joi.object({ url: Joi.string().required(), expiresAt: Joi.string().isoDate().required() }).label('LoginQr'),
    passwordHint: Joi.string().allow(''),
  }).label('Login').description('only while logging in'),
  error: errorInfo.description('only in status error, or while backing off'),
  createdAt: iso('2026-11-28T05:00:00.000Z').required(),
  updatedAt: iso('2026-11-28T05:00:01.000Z').required(),
  lastActiveAt: iso('2026-11-28T05:00:01.000Z'),
  quotas: Joi.array().items(Joi.object({
    name: Joi.string().required().example('youtube.uploads.daily'), used: Joi.number().integer().min(0).required(),
    limit: Joi.number().integer().min(0).required(), resetsAt: iso('2026-11-29T08:00:00.000Z').required(),
  }).label('PlatformQuota')).description('OAuth platforms: the platform quotas the service counts for this connection'),
}).label('Connection');

export const codeSchema = Joi.object({
  // Telegram sends 5 digits today (6 for some); 4..8 leaves room without accepting junk.
  code: Joi.string().pattern(/^\d{4,8}$/).required().example('12345'),
}).label('LoginCode');

export const passwordSchema = Joi.object({ password: Joi.string().min(1).max(256).required().example('correct horse') }).label('LoginPassword');

export const recoveryCodeSchema = Joi.object({
  code: Joi.string().trim().pattern(/^\d{4,10}$/).required().example('123456').description('the code Telegram e-mailed to the recovery address'),
  newPassword: Joi.string().min(1).max(256).example('a new passphrase').description('optional: the new 2FA password (used once, never stored); without it the password is removed'),
}).label('PasswordRecoveryCode');

export const recoverySchema = Joi.object({ emailPattern: Joi.string().required().example('a***@example.org') }).label('PasswordRecovery');

/** Routes that take no body: nothing, or an empty JSON object. */
export const noBody = Joi.object({}).allow(null).label('NoBody');

export const qrSchema = Joi.object({
  url: Joi.string().required().example('tg://login?token=AQAB...'),
  expiresAt: iso('2026-11-28T05:00:30.000Z').required(),
}).label('QrLogin');

// Opaque keyset cursors: base64url of text, never parsed by clients. Bounded so a huge query string
// is refused before it is decoded.
export const cursorString = Joi.string().max(512).pattern(/^[A-Za-z0-9_-]+$/).description('nextCursor of the previous page');

/** The list filters: platforms and kinds are those the registered adapters declare. */
export const listConnectionsQuery = (platforms: Platforms) => Joi.object({
  status: Joi.string().valid(...statuses),
  platform: Joi.string().valid(...platforms.names),
  kind: Joi.string().valid(...platforms.kindNames()),
  limit: Joi.number().integer().min(1).max(100).default(50),
  cursor: cursorString,
}).label('ListConnectionsQuery');

export const connectionPage = Joi.object({ items: Joi.array().items(connectionSchema).required(), nextCursor: Joi.string() }).label('ConnectionPage');

const notOurCursor = () => new AppError('VALIDATION_ERROR', 'invalid cursor', { details: [{ path: 'query.cursor', message: 'not a cursor of this list' }] });

// Postgres prints created_at as `2026-11-28 05:00:00.123456+00`; a row deleted between the page and
// its cursor falls back to the API's ISO string (`…T05:00:00.123Z`). Date.parse took far more ('1',
// 'Feb 31'), which Postgres then refused with a 500; here every field is checked as Postgres would.
const cursorTime = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.\d{1,6})?(?:Z|[+-](\d{2})(?::?(\d{2}))?)$/;

function isCursorTime(text: string): boolean {
  const m = cursorTime.exec(text);
  if (!m) return false;
  const [year, month, day, hour, minute, second, offsetHours, offsetMinutes] = m.slice(1).map((f) => Number(f ?? 0)) as number[];
  // Date.UTC maps years 0..99 to 19xx: those fail the year comparison, and no row is that old.
  const date = new Date(Date.UTC(year!, month! - 1, day!));
  return date.getUTCFullYear() === year && date.getUTCMonth() === month! - 1 && date.getUTCDate() === day
    && hour! <= 23 && minute! <= 59 && second! <= 59 && offsetHours! <= 15 && offsetMinutes! <= 59;
}

/** Keyset cursor of the connection and webhook-delivery lists: (created_at as Postgres text with microseconds, id). */
export const keysetCursor = {
  encode: (c: { createdAt: string; id: string }): string => Buffer.from(`${c.createdAt}|${c.id}`).toString('base64url'),
  decode(s: string): { createdAt: string; id: string } {
    const [createdAt, id, ...rest] = Buffer.from(s, 'base64url').toString('utf8').split('|');
    if (rest.length > 0 || !id || uuid.validate(id).error || !createdAt || !isCursorTime(createdAt)) throw notOurCursor();
    return { createdAt, id };
  },
};

// ---------------------------------------------------------------------------------------------
// Chats

// The platform decides which references it takes (Telegram: @name, a numeric id, a t.me link);
// the connection service normalises them and answers VALIDATION_ERROR for one that fits none.
export const addChatSchema = Joi.object({
  chat: Joi.string().trim().min(1).max(256).required()
    .example('@my_channel').description('a chat reference of the connection\'s platform (Telegram: @name | -1001234567890 | https://t.me/name | https://t.me/+invite)'),
  requireAdmin: Joi.boolean().default(false).description('422 NOT_ADMIN code of the platform (nothing stored) when the connection is not an admin'),
}).label('AddChat');

export const chatSchema = Joi.object({
  id: Joi.string().required().example('7a1c9d3e-2b4f-4e6a-8c0d-1e2f3a4b5c6d'),
  connectionId: Joi.string().required().example(uuidExample),
  platformChatId: Joi.string().required().example('-1001234567890'),
  type: Joi.string().valid('channel', 'group', 'supergroup', 'private').required(),
  title: Joi.string().allow('').required().example('Release notes'),
  username: Joi.string().example('my_channel'),
  isAdmin: Joi.boolean().required(),
  canSend: Joi.boolean().required(),
  rights: Joi.object().pattern(Joi.string(), Joi.boolean()).required().example({ postMessages: true, editMessages: true }).label('ChatRights'),
  checkedAt: iso('2026-11-28T05:00:00.000Z').required(),
}).label('Chat');

export const chatList = Joi.object({ items: Joi.array().items(chatSchema).required() }).label('ChatList');
export const chatQuery = Joi.object({ refresh: Joi.boolean().default(false).description('re-check membership and rights now') }).label('ChatQuery');

// ---------------------------------------------------------------------------------------------
// Audit

export const auditEntry = Joi.object({
  id: Joi.string().required().example('1042'),
  at: iso('2026-11-28T05:00:00.000Z').required(),
  actor: Joi.string().required().example('user-123').description('sub of whoever acted'),
  action: Joi.string().required().example('chat.added'),
  target: Joi.string().allow(null).required().example('7a1c9d3e-2b4f-4e6a-8c0d-1e2f3a4b5c6d'),
  details: Joi.object().unknown(true).required().example({ connectionId: uuidExample }),
}).label('AuditEntry');

export const adminAuditEntry = auditEntry.keys({ owner: Joi.string().required().example('user-123') }).label('AdminAuditEntry');
export const auditPage = Joi.object({ items: Joi.array().items(auditEntry).required(), nextCursor: Joi.string() }).label('AuditPage');
export const adminAuditPage = Joi.object({ items: Joi.array().items(adminAuditEntry).required(), nextCursor: Joi.string() }).label('AdminAuditPage');

export const auditQuery = Joi.object({ limit: Joi.number().integer().min(1).max(100).default(50), cursor: cursorString }).label('AuditQuery');
export const adminAuditQuery = auditQuery.keys({ owner: Joi.string().max(255).description('only this caller\'s entries') }).label('AdminAuditQuery');

/** Audit cursor: the id (bigint) of the last entry of the page; the next page holds older entries. */
export const auditCursor = {
  encode: (id: string): string => Buffer.from(`a${id}`).toString('base64url'),
  decode(s: string): string {
    const m = Buffer.from(s, 'base64url').toString('utf8').match(/^a(\d{1,19})$/);
    // 19 digits reach past bigint (9223372036854775807), which Postgres refused with a 500.
    if (!m || BigInt(m[1]!) > 9_223_372_036_854_775_807n) throw notOurCursor();
    return m[1]!;
  },
};

// ---------------------------------------------------------------------------------------------
// Personal data

const messageExport = Joi.object({
  id: Joi.string().required(), connectionId: Joi.string().required(), chat: Joi.string().required(),
  platformChatId: Joi.string().allow(null).required(), text: Joi.string().allow('').required(),
  parseMode: Joi.string().allow(null).required(), silent: Joi.boolean().required(), replyTo: Joi.string().allow(null).required(),
  priority: Joi.string().required(), status: Joi.string().required(), attempts: Joi.number().integer().required(),
  platformMessageId: Joi.string().allow(null).required(), error: errorInfo.allow(null).required(),
  idempotencyKey: Joi.string().allow(null).required(),
  createdAt: Joi.string().isoDate().required(), updatedAt: Joi.string().isoDate().required(), sentAt: Joi.string().isoDate().allow(null).required(),
  media: Joi.object({
    type: Joi.string().required(), uploadId: Joi.string(), url: Joi.string(), filename: Joi.string(), contentType: Joi.string(), size: Joi.number(), sha256: Joi.string(),
  }).label('MessageMediaExport').allow(null).required(),
  editedAt: Joi.string().isoDate().allow(null).required(), deletedAt: Joi.string().isoDate().allow(null).required(),
  operation: Joi.object({ type: Joi.string().valid('edit', 'delete').required(), messageId: Joi.string().required() }).label('MessageOperationExport').allow(null).required(),
  direction: Joi.string().valid('out', 'in').required(), from: Joi.string().allow(null).required().description('the sender of an incoming message'),
}).label('MessageExport');

const eventExport = Joi.object({
  id: Joi.string().required(), pos: Joi.number().integer().required(), type: Joi.string().required(), occurredAt: Joi.string().isoDate().required(),
  connectionId: Joi.string().allow(null).required(), data: Joi.any().required(),
}).label('EventExport');

export const consentSchema = Joi.object({
  purpose: Joi.string().valid(...purposes).required().example('processing'),
  version: Joi.string().required().example('2026-05-01').description('the version of the text the caller decided on'),
  granted: Joi.boolean().required().example(true),
  at: iso('2026-11-28T05:00:00.000Z').required(),
}).label('Consent');

const uploadExport = Joi.object({
  id: Joi.string().required(), size: Joi.number().integer().required(), sha256: Joi.string().required(), contentType: Joi.string().required(),
  filename: Joi.string().required(), createdAt: Joi.string().isoDate().required(), expiresAt: Joi.string().isoDate().required(),
}).label('UploadExport');

/** What each element of the export's arrays must be; the streamed export checks every item against these. */
export const exportItemSchemas = {
  connections: connectionSchema, chats: chatSchema, messages: messageExport, uploads: uploadExport, audit: auditEntry, consents: consentSchema, events: eventExport,
} as const;
export const exportHeadSchema = Joi.object({
  subject: Joi.string().required().example('user-123'),
  exportedAt: iso('2026-11-28T05:00:00.000Z').required(),
}).label('PersonalDataExportHead');

export const exportSchema = exportHeadSchema.keys({
  connections: Joi.array().items(exportItemSchemas.connections).required(),
  chats: Joi.array().items(exportItemSchemas.chats).required(),
  messages: Joi.array().items(exportItemSchemas.messages).required(),
  uploads: Joi.array().items(exportItemSchemas.uploads).required(),
  audit: Joi.array().items(exportItemSchemas.audit).required(),
  consents: Joi.array().items(exportItemSchemas.consents).required().description('every consent decision, oldest first'),
  events: Joi.array().items(exportItemSchemas.events).required().description('the stored events (kept EVENT_RETENTION_HOURS), oldest first'),
}).label('PersonalDataExport');

// ---------------------------------------------------------------------------------------------
// Operators

const actorSummaryKeys = {
  id: Joi.string().required().example(uuidExample),
  kind: Joi.string().required().example('user'),
  owner: Joi.string().required().example('user-123'),
  state: Joi.string().required().example('active'),
  since: iso('2026-11-28T05:00:00.000Z').required(),
  restarts: Joi.number().integer().min(0).required(),
  breaker: Joi.object({ state: Joi.string().required().example('closed'), failures: Joi.number().integer().required(), openUntil: Joi.string().isoDate() }).label('Breaker').required(),
  memory: Joi.object({ bytes: Joi.number().integer().required().example(31_744), budget: Joi.number().integer().required().example(52_428_800) }).label('MemoryUse').required(),
  lastError: errorInfo,
  shard: Joi.number().integer().min(0).required(),
  node: Joi.string().example('integration-0').description('the node running the actor'),
};
export const actorSummary = Joi.object(actorSummaryKeys).label('ActorSummary');
export const actorList = Joi.object({
  items: Joi.array().items(actorSummary).required(),
  totals: Joi.object().pattern(Joi.string(), Joi.number().integer()).required().example({ active: 12, error: 1 }).label('ActorTotals'),
  unreachableNodes: Joi.array().items(Joi.string()).example(['integration-2'])
    .description('several daemons: live nodes that did not answer, so their actors are missing from `items` and `totals`'),
}).label('ActorList');
export const actorDetail = Joi.object({
  ...actorSummaryKeys,
  snapshot: Joi.object({ value: Joi.any(), status: Joi.string().required(), tags: Joi.array().items(Joi.string()).required() }).label('ActorSnapshot').required(),
  context: Joi.object().unknown(true).required().description('machine context without secrets'),
  transitions: Joi.array().items(Joi.object({ at: Joi.string().required(), from: Joi.string().required(), to: Joi.string().required(), event: Joi.string().required() }).label('Transition')).max(50).required(),
}).label('ActorDetail');
export const clusterView = Joi.object({
  node: Joi.string().required().example('integration-0').description('the node that answered'),
  nodes: Joi.array().items(Joi.object({
    id: Joi.string().required().example('integration-0'),
    startedAt: iso('2026-11-28T05:00:00.000Z').required(),
    lastSeenAt: iso('2026-11-28T05:10:00.000Z').required(),
    shards: Joi.array().items(Joi.number().integer().min(0)).required().example([0, 1, 2]),
  }).label('ClusterNode')).required().description('live nodes only'),
  shards: Joi.array().items(Joi.object({
    shard: Joi.number().integer().min(0).required(),
    owner: Joi.string().allow(null).required().description('null while free'),
    epoch: Joi.number().integer().min(0).required(),
    expiresAt: iso('2026-11-28T05:10:20.000Z').allow(null).required(),
  }).label('ShardLease')).required(),
}).label('ClusterView');
export const restartAnswer = Joi.object({ id: Joi.string().required(), restarting: Joi.boolean().valid(true).required() }).label('ActorRestart');

// ---------------------------------------------------------------------------------------------
// Documentation helper

/**
 * Route `response` (validated success bodies + the error envelope per status) and hapi-swagger's
 * per-status descriptions naming the error codes. Every authenticated route can also answer 401
 * and 429; those are added here so no route forgets them.
 */
export function documented(
  success: Record<number, { schema?: Joi.Schema; description: string }>,
  errors: Record<number, string>,
  plugins: NonNullable<RouteOptions['plugins']> = {},
): Pick<RouteOptions, 'response' | 'plugins'> {
  const all: Record<number, string> = { 401: 'UNAUTHORIZED: missing, invalid or expired token', 429: 'RATE_LIMITED (Retry-After)', ...errors };
  const status: Record<number, Joi.Schema> = {};
  for (const [code, s] of Object.entries(success)) if (s.schema) status[Number(code)] = s.schema;
  Object.assign(status, errorResponses(...Object.keys(all).map(Number)));
  const responses: Record<string, { description: string }> = {};
  for (const [code, s] of Object.entries(success)) responses[code] = { description: s.description };
  for (const [code, d] of Object.entries(all)) responses[code] = { description: d };
  return { response: { status }, plugins: { ...plugins, 'hapi-swagger': { responses } } };
}

/** Each platform's error codes of an operation beside the core ones, by status, for `documented()`. */
export const withPlatformErrors = (platforms: Platforms) => (op: Operation, core: Record<number, string>): Record<number, string> => {
  const out = { ...core };
  for (const [status, codes] of Object.entries(platforms.documentedErrors(op))) {
    const s = Number(status);
    out[s] = out[s] ? `${out[s]}; ${codes}` : codes;
  }
  return out;
};
