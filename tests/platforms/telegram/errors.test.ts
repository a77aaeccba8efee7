// The one map from Telegram's failures to API.md codes, and which of them end the connection. MTProto
// errors are built the way GramJS builds them from an rpc_error (RPCMessageToError); the emulator
// cannot answer most of them (PEER_FLOOD, ENTITY_BOUNDS_INVALID, a 500…), so the map is tested here
// and one of each kind end to end in tests/supervisor/platform-errors.e2e.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Api, errors } from 'telegram';
import { endsConnection } from '../../../src/errors.ts';
import { tgError } from '../../../src/platforms/telegram/codes.ts';
import { mapBotApiError, mapTelegramError } from '../../../src/platforms/telegram/errors.ts';

const request = new Api.messages.SendMessage({ peer: new Api.InputPeerSelf(), message: 'x', randomId: 1 as never });
const rpc = (errorMessage: string, errorCode: number) => mapTelegramError(errors.RPCMessageToError({ errorMessage, errorCode } as never, request));

test("MTProto answers about the message's content are permanent VALIDATION_ERRORs naming Telegram's reason", () => {
  for (const [name, status] of [
    ['ENTITY_BOUNDS_INVALID', 400], ['REPLY_MESSAGE_ID_INVALID', 400], ['MESSAGE_EMPTY', 400], ['MESSAGE_TOO_LONG', 400],
    ['ENTITIES_TOO_LONG', 400], ['SOME_FUTURE_THING_INVALID', 400], ['SOME_FUTURE_REFUSAL', 406],
  ] as const) {
    const e = rpc(name, status);
    assert.is(e.code, 'VALIDATION_ERROR', name);
    assert.is(e.retryable, false, name);
    assert.match(e.message, name);
    assert.is(endsConnection(e), false, `${name} leaves the connection active`);
  }
});

test('MTProto refusals by the chat or the peer are permanent TG_CHAT_WRITE_FORBIDDEN', () => {
  for (const [name, status] of [
    ['USER_IS_BLOCKED', 400], ['PRIVACY_PREMIUM_REQUIRED', 403], ['USER_PRIVACY_RESTRICTED', 403], ['YOU_BLOCKED_USER', 400],
    ['CHAT_SEND_PLAIN_FORBIDDEN', 403], ['CHAT_SEND_SOMETHING_NEW_FORBIDDEN', 403],
  ] as const) {
    const e = rpc(name, status);
    assert.is(e.code, 'TG_CHAT_WRITE_FORBIDDEN', name);
    assert.is(e.retryable, false, name);
    assert.match(e.message, name);
    assert.is(endsConnection(e), false, name);
  }
});

test('PEER_FLOOD (a spam-limited account) is permanent, says so, and is no flood wait', () => {
  const e = rpc('PEER_FLOOD', 400);
  assert.is(e.code, 'TG_CHAT_WRITE_FORBIDDEN');
  assert.is(e.retryable, false);
  assert.is(e.retryAfter, undefined);
  assert.match(e.message, /spam/);
  assert.is(endsConnection(e), false);
});

test("Telegram's PHONE_NUMBER_INVALID is 422 TG_PHONE_INVALID (a malformed string, refused before any call, stays 400)", () => {
  for (const status of [400, 406]) {
    const e = rpc('PHONE_NUMBER_INVALID', status);
    assert.is(e.code, 'TG_PHONE_INVALID');
    assert.is(e.status, 422);
    assert.is(e.retryable, false);
  }
  assert.is(tgError('TG_PHONE_INVALID', 'malformed').status, 400);
});

test('unknown ids are TG_CHAT_NOT_FOUND', () => {
  for (const name of ['USER_ID_INVALID', 'PEER_ID_INVALID', 'CHANNEL_INVALID']) assert.is(rpc(name, 400).code, 'TG_CHAT_NOT_FOUND', name);
});

test('unchanged: flood waits, revoked sessions, Telegram-side failures and dead links', () => {
  const flood = rpc('FLOOD_WAIT_7', 420);
  assert.is(flood.code, 'TG_API_429');
  assert.is(flood.retryAfter, 7);
  assert.is(endsConnection(flood), false);

  const revoked = rpc('AUTH_KEY_UNREGISTERED', 401);
  assert.is(revoked.code, 'TG_SESSION_EXPIRED');
  assert.ok(endsConnection(revoked), 'a revoked session moves the connection');

  // Telegram answered, but failed on its side: retried, and the link is fine.
  const internal = rpc('INTERNAL_SERVER_ERROR', 500);
  assert.is(internal.code, 'TG_UNAVAILABLE');
  assert.ok(internal.retryable);
  assert.is(endsConnection(internal), false);

  // No answer: a socket error GramJS passes on, or our own timeout.
  const socket = mapTelegramError(new Error('Cannot send requests while disconnected'));
  assert.is(socket.code, 'TG_UNAVAILABLE');
  assert.ok(endsConnection(socket));
  assert.ok(endsConnection(tgError('TG_UNAVAILABLE', 'Telegram did not answer messages.sendMessage within 15000 ms')));
});

test("Bot API 400s are Telegram's answer about the message: permanent, with its reason", () => {
  const parse = mapBotApiError({ error_code: 400, description: "Bad Request: can't parse entities: Character '.' is reserved and must be escaped with the preceding '\\'" }, 'sendMessage');
  assert.is(parse.code, 'VALIDATION_ERROR');
  assert.is(parse.retryable, false);
  assert.match(parse.message, "can't parse entities: Character '.' is reserved");
  assert.is(endsConnection(parse), false);

  const reply = mapBotApiError({ error_code: 400, description: 'Bad Request: message to be replied not found' }, 'sendMessage');
  assert.is(reply.code, 'VALIDATION_ERROR');
  assert.match(reply.message, 'message to be replied not found');
  assert.is(endsConnection(reply), false);

  const rights = mapBotApiError({ error_code: 400, description: 'Bad Request: need administrator rights in the channel chat' }, 'sendMessage');
  assert.is(rights.code, 'TG_CHAT_WRITE_FORBIDDEN');
  assert.is(endsConnection(rights), false);

  assert.is(mapBotApiError({ error_code: 400, description: 'Bad Request: chat not found' }, 'sendMessage').code, 'TG_CHAT_NOT_FOUND');
  const moved = mapBotApiError({ error_code: 400, description: 'Bad Request: group chat was upgraded to a supergroup chat', parameters: { migrate_to_chat_id: -1001234567890 } }, 'sendMessage');
  assert.is(moved.code, 'TG_CHAT_NOT_FOUND');
  assert.match(moved.message, '-1001234567890');
  assert.is(mapBotApiError({ error_code: 403, description: 'Forbidden: bot was blocked by the user' }, 'sendMessage').code, 'TG_CHAT_WRITE_FORBIDDEN');
});

test('Bot API: token refused ends the connection; flood and 5xx answers do not', () => {
  const token = mapBotApiError({ error_code: 401, description: 'Unauthorized' }, 'sendMessage');
  assert.is(token.code, 'TG_BOT_TOKEN_INVALID');
  assert.ok(endsConnection(token));

  const flood = mapBotApiError({ error_code: 429, description: 'Too Many Requests: retry after 3', parameters: { retry_after: 3 } }, 'sendMessage');
  assert.is(flood.code, 'TG_API_429');
  assert.is(flood.retryAfter, 3);
  assert.is(endsConnection(flood), false);

  const down = mapBotApiError({ error_code: 500, description: 'Internal Server Error' }, 'sendMessage');
  assert.is(down.code, 'TG_UNAVAILABLE');
  assert.ok(down.retryable);
  assert.is(endsConnection(down), false);
});

test.run();
