import type { Lifecycle, ReqRef, Request, ResponseToolkit, RouteOptions } from '@hapi/hapi';
import Joi from 'joi';
import { AppError } from '../errors.ts';
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

const statuses = ['connecting', 'awaiting-code', 'awaiting-qr', 'awaiting-2fa', 'active', 'error', 'stopped'] as const;
const errorInfo = Joi.object({ code: Joi.string().required(), message: Joi.string().required(), retryAt: Joi.string().isoDate() }).label('ErrorInfo');

export const connectionSchema = Joi.object({
  id: Joi.string().required().example(uuidExample),
  platform: Joi.string().required().example('telegram'),
  kind: Joi.string().valid('user', 'bot').required(),
  status: Joi.string().valid(...statuses).required().example('awaiting-code'),
  statusSince: iso('2026-11-28T05:00:00.000Z').required(),
  displayName: Joi.string().allow(null, '').required().example('Alice'),
  username: Joi.string().example('alice'),
  platformUserId: Joi.string().example('777000123'),
  phone: Joi.string().description('always masked').example('+12******0123'),
  login: Joi.object({
    method: Joi.string().valid('phone', 'qr').required(),
    codeType: Joi.string().valid('app', 'sms'),
    qr: Joi.object({ url: Joi.string().required(), expiresAt: Joi.string().isoDate().required() }).label('LoginQr'),
    passwordHint: Joi.string().allow(''),
  }).label('Login').description('only while logging in'),
  error: errorInfo.description('only in status error, or while backing off'),
  createdAt: iso('2026-11-28T05:00:00.000Z').required(),
  updatedAt: iso('2026-11-28T05:00:01.000Z').required(),
  lastActiveAt: iso('2026-11-28T05:00:01.000Z'),
}).label('Connection');

// Telegram bot tokens look like 123456:ABC-def (API.md); the pattern also keeps odd bytes out of logs.
export const botTokenPattern = /^\d+:[\w-]+$/;

// Conditions are written `is <anything else> → forbidden, otherwise required`: hapi-swagger lists a field as
// required whenever a `then` requires it, which would document phone and token as both required.
export const createConnectionSchema = Joi.object({
  platform: Joi.string().valid('telegram').default('telegram'),
  kind: Joi.string().valid('user', 'bot').required(),
  method: Joi.string().valid('phone', 'qr').description('user only; default phone')
    .when('kind', { is: Joi.valid('user').required(), then: Joi.any().default('phone'), otherwise: Joi.forbidden() }),
  phone: Joi.string().trim().max(32).example('+12015550123').description('required for kind user with method phone (the default): E.164 or international format')
    .when('method', { is: Joi.any().invalid('phone'), then: Joi.forbidden(), otherwise: Joi.required() }),
  token: Joi.string().max(256).pattern(botTokenPattern).example('123456:ABC-def').description('required for kind bot, refused otherwise')
    .when('kind', { is: Joi.any().invalid('bot'), then: Joi.forbidden(), otherwise: Joi.required() }),
}).label('CreateConnection').example({ platform: 'telegram', kind: 'user', phone: '+12015550123' });

export const codeSchema = Joi.object({
  // Telegram sends 5 digits today (6 for some); 4..8 leaves room without accepting junk.
  code: Joi.string().pattern(/^\d{4,8}$/).required().example('12345'),
}).label('LoginCode');

export const passwordSchema = Joi.object({ password: Joi.string().min(1).max(256).required().example('correct horse') }).label('LoginPassword');

/** Routes that take no body: nothing, or an empty JSON object. */
export const noBody = Joi.object({}).allow(null).label('NoBody');

export const qrSchema = Joi.object({
  url: Joi.string().required().example('tg://login?token=AQAB...'),
  expiresAt: iso('2026-11-28T05:00:30.000Z').required(),
}).label('QrLogin');

// Opaque keyset cursors: base64url of text, never parsed by clients. Bounded so a huge query string
// is refused before it is decoded.
const cursorString = Joi.string().max(512).pattern(/^[A-Za-z0-9_-]+$/).description('nextCursor of the previous page');

export const listConnectionsQuery = Joi.object({
  status: Joi.string().valid(...statuses),
  platform: Joi.string().valid('telegram'),
  kind: Joi.string().valid('user', 'bot'),
  limit: Joi.number().integer().min(1).max(100).default(50),
  cursor: cursorString,
}).label('ListConnectionsQuery');

export const connectionPage = Joi.object({ items: Joi.array().items(connectionSchema).required(), nextCursor: Joi.string() }).label('ConnectionPage');

/** Connection list cursor: (created_at as Postgres text with microseconds, id). */
export const connectionCursor = {
  encode: (c: { createdAt: string; id: string }): string => Buffer.from(`${c.createdAt}|${c.id}`).toString('base64url'),
  decode(s: string): { createdAt: string; id: string } {
    const [createdAt, id, ...rest] = Buffer.from(s, 'base64url').toString('utf8').split('|');
    if (rest.length > 0 || !id || uuid.validate(id).error || !createdAt || Number.isNaN(Date.parse(createdAt))) {
      throw new AppError('VALIDATION_ERROR', 'invalid cursor', { details: [{ path: 'query.cursor', message: 'not a cursor of this list' }] });
    }
    return { createdAt, id };
  },
};

// ---------------------------------------------------------------------------------------------
// Chats

// The forms API.md accepts, checked before anything reaches the platform:
// @name (Telegram usernames are 5..32 chars; 4 allowed for old ones), a numeric id (Bot API style
// -100…), a public link t.me/name, an invite link t.me/+hash or t.me/joinchat/hash.
const usernameRe = /^@([A-Za-z][A-Za-z0-9_]{3,31})$/;
const numericRe = /^-?\d{1,20}$/;
const publicLinkRe = /^(?:https?:\/\/)?(?:t|telegram)\.me\/([A-Za-z][A-Za-z0-9_]{3,31})\/?$/;
const inviteLinkRe = /^(?:https?:\/\/)?(?:t|telegram)\.me\/(?:\+|joinchat\/)([A-Za-z0-9_-]{8,64})\/?$/;

/** Canonical chat reference: `@name`, the numeric id, or `https://t.me/+hash`; undefined if none fits. */
export function normaliseChatRef(raw: string): string | undefined {
  const s = raw.trim();
  let m: RegExpMatchArray | null;
  if ((m = s.match(usernameRe)) || (m = s.match(publicLinkRe))) return `@${m[1]}`;
  if (numericRe.test(s)) return s;
  if ((m = s.match(inviteLinkRe))) return `https://t.me/+${m[1]}`;
  return undefined;
}

export const addChatSchema = Joi.object({
  chat: Joi.string().max(256).required()
    .custom((v: string, helpers) => normaliseChatRef(v) ?? helpers.error('string.chatRef'))
    .messages({ 'string.chatRef': '"chat" must be @name, a numeric chat id, https://t.me/name or an invite link' })
    .example('@my_channel').description('@name | -1001234567890 | https://t.me/name | https://t.me/+invite'),
  requireAdmin: Joi.boolean().default(false).description('422 TG_NOT_ADMIN (nothing stored) when the connection is not an admin'),
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
    if (!m) throw new AppError('VALIDATION_ERROR', 'invalid cursor', { details: [{ path: 'query.cursor', message: 'not a cursor of this list' }] });
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
}).label('MessageExport');

export const exportSchema = Joi.object({
  subject: Joi.string().required().example('user-123'),
  exportedAt: iso('2026-11-28T05:00:00.000Z').required(),
  connections: Joi.array().items(connectionSchema).required(),
  chats: Joi.array().items(chatSchema).required(),
  messages: Joi.array().items(messageExport).required(),
  audit: Joi.array().items(auditEntry).required(),
}).label('PersonalDataExport');

// ---------------------------------------------------------------------------------------------
// Operators

const actorSummaryKeys = {
  id: Joi.string().required().example(uuidExample),
  kind: Joi.string().valid('user', 'bot').required(),
  owner: Joi.string().required().example('user-123'),
  state: Joi.string().required().example('active'),
  since: iso('2026-11-28T05:00:00.000Z').required(),
  restarts: Joi.number().integer().min(0).required(),
  breaker: Joi.object({ state: Joi.string().required().example('closed'), failures: Joi.number().integer().required(), openUntil: Joi.string().isoDate() }).label('Breaker').required(),
  memory: Joi.object({ bytes: Joi.number().integer().required().example(31_744), budget: Joi.number().integer().required().example(52_428_800) }).label('MemoryUse').required(),
  lastError: errorInfo,
  shard: Joi.number().integer().min(0).required(),
};
export const actorSummary = Joi.object(actorSummaryKeys).label('ActorSummary');
export const actorList = Joi.object({
  items: Joi.array().items(actorSummary).required(),
  totals: Joi.object().pattern(Joi.string(), Joi.number().integer()).required().example({ active: 12, error: 1 }).label('ActorTotals'),
}).label('ActorList');
export const actorDetail = Joi.object({
  ...actorSummaryKeys,
  snapshot: Joi.object({ value: Joi.any(), status: Joi.string().required(), tags: Joi.array().items(Joi.string()).required() }).label('ActorSnapshot').required(),
  context: Joi.object().unknown(true).required().description('machine context without secrets'),
  transitions: Joi.array().items(Joi.object({ at: Joi.string().required(), from: Joi.string().required(), to: Joi.string().required(), event: Joi.string().required() }).label('Transition')).max(50).required(),
}).label('ActorDetail');
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
