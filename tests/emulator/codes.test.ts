import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Api, errors, type TelegramClient } from 'telegram';
import { startEmulator, type Emulator, type NewUser } from './index.ts';
import { API, ManualClock, dcConnected, destroyAll, rpcErrorOf, withTimeout } from './support/gramjs.ts';

// Login codes as Telegram delivers them, through GramJS over TCP: the order of code types, next_type
// and timeout, auth.resendCode (FLOOD_WAIT too early, SEND_CODE_UNAVAILABLE after the last), e-mail
// and Fragment codes, Telegram's test numbers, and which numbers exist at all.

const clock = new ManualClock();
let emu: Emulator;
let n = 0;
const phone = () => `+4477004${String(10_000 + ++n).slice(1)}`;

test.before(async () => {
  emu = await startEmulator({ clock, codeTtlMs: 600_000 });
});
test.after(async () => {
  await destroyAll();
  await emu.stop();
});

const sendCode = async (client: TelegramClient, p: string) =>
  (await withTimeout(client.invoke(new Api.auth.SendCode({ phoneNumber: p, ...API, settings: new Api.CodeSettings({}) })))) as Api.auth.SentCode;
const resend = async (client: TelegramClient, p: string, hash: string) =>
  (await withTimeout(client.invoke(new Api.auth.ResendCode({ phoneNumber: p, phoneCodeHash: hash })))) as Api.auth.SentCode;
const signIn = async (client: TelegramClient, p: string, hash: string, code: string) =>
  (await withTimeout(client.invoke(new Api.auth.SignIn({ phoneNumber: p, phoneCodeHash: hash, phoneCode: code })))) as Api.auth.Authorization;

async function fresh(user: Omit<NewUser, 'phone'> = {}): Promise<{ p: string; userId: number; client: TelegramClient }> {
  const p = phone();
  const { userId } = await emu.createUser({ phone: p, ...user });
  const { client } = await dcConnected(emu, { requestRetries: 1 });
  return { p, userId, client };
}

test('default: the app code first (5 digits, next SMS after 60 s); resend too early is FLOOD_WAIT; then SMS with the same code', async () => {
  const { p, userId, client } = await fresh();
  const sent = await sendCode(client, p);
  assert.instance(sent.type, Api.auth.SentCodeTypeApp);
  assert.is((sent.type as Api.auth.SentCodeTypeApp).length, 5);
  assert.instance(sent.nextType, Api.auth.CodeTypeSms);
  assert.is(sent.timeout, 60);
  const first = emu.lastCode(p)!;
  assert.equal([first.type, first.code.length], ['app', 5]);
  clock.advance(20_000);
  const early = await withTimeout(client.invoke(new Api.auth.ResendCode({ phoneNumber: p, phoneCodeHash: sent.phoneCodeHash }))).catch((e: unknown) => e);
  assert.instance(early, errors.FloodWaitError);
  assert.is((early as errors.FloodWaitError).seconds, 40, 'what is left of the 60 s');
  clock.advance(40_000);
  const sms = await resend(client, p, sent.phoneCodeHash);
  assert.instance(sms.type, Api.auth.SentCodeTypeSms);
  assert.is(sms.nextType ?? undefined, undefined);
  assert.is(sms.timeout ?? undefined, undefined);
  assert.is(sms.phoneCodeHash, sent.phoneCodeHash);
  assert.equal(emu.lastCode(p), { code: first.code, type: 'sms' }, 'Telegram resends the same code by the next channel');
  assert.is(await rpcErrorOf(resend(client, p, sent.phoneCodeHash)), 'SEND_CODE_UNAVAILABLE');
  assert.is(Number((await signIn(client, p, sent.phoneCodeHash, first.code)).user.id), userId);
});

test('codeTypes app → sms → call: each resend moves on once its timeout passed, then SEND_CODE_UNAVAILABLE', async () => {
  const { p, client } = await fresh({ codeTypes: ['app', 'sms', 'call'] });
  const sent = await sendCode(client, p);
  assert.instance(sent.nextType, Api.auth.CodeTypeSms);
  clock.advance(60_000);
  const sms = await resend(client, p, sent.phoneCodeHash);
  assert.instance(sms.type, Api.auth.SentCodeTypeSms);
  assert.instance(sms.nextType, Api.auth.CodeTypeCall);
  assert.is(sms.timeout, 120);
  assert.is(await rpcErrorOf(resend(client, p, sent.phoneCodeHash)), 'FLOOD_WAIT_120');
  clock.advance(120_000);
  const call = await resend(client, p, sent.phoneCodeHash);
  assert.instance(call.type, Api.auth.SentCodeTypeCall);
  assert.is((call.type as Api.auth.SentCodeTypeCall).length, 5);
  assert.is(emu.lastCode(p)!.type, 'call');
  assert.is(await rpcErrorOf(resend(client, p, sent.phoneCodeHash)), 'SEND_CODE_UNAVAILABLE');
  assert.is(await rpcErrorOf(resend(client, p, 'not-the-hash')), 'PHONE_CODE_EXPIRED');
  assert.is(await rpcErrorOf(resend(client, p, '')), 'PHONE_CODE_HASH_EMPTY');
});

test('flash call and missed call: pattern and prefix of the calling number; codeTimeoutS 0 lets a resend go at once', async () => {
  const { p, userId, client } = await fresh({ codeTypes: ['sms', 'flash-call', 'missed-call'], codeTimeoutS: 0 });
  const sent = await sendCode(client, p);
  assert.instance(sent.type, Api.auth.SentCodeTypeSms);
  assert.instance(sent.nextType, Api.auth.CodeTypeFlashCall);
  assert.is(sent.timeout ?? undefined, undefined);
  const base = emu.lastCode(p)!.code;
  const flash = await resend(client, p, sent.phoneCodeHash);
  assert.is((flash.type as Api.auth.SentCodeTypeFlashCall).pattern, '+447700*****');
  assert.instance(flash.nextType, Api.auth.CodeTypeMissedCall);
  assert.equal(emu.lastCode(p), { code: `447700${base}`, type: 'flash-call' }, 'a flash call\'s code is the whole calling number');
  const missed = await resend(client, p, sent.phoneCodeHash);
  const t = missed.type as Api.auth.SentCodeTypeMissedCall;
  assert.equal([t.className, t.prefix, t.length], ['auth.SentCodeTypeMissedCall', '+447700', 5]);
  assert.equal(emu.lastCode(p), { code: base, type: 'missed-call' });
  assert.is(Number((await signIn(client, p, sent.phoneCodeHash, base)).user.id), userId);
});

test('a user with a login e-mail gets an e-mail code (6 digits, the address masked)', async () => {
  const { p, userId, client } = await fresh({ loginEmail: 'alice@example.com' });
  const sent = await sendCode(client, p);
  const t = sent.type as Api.auth.SentCodeTypeEmailCode;
  assert.instance(t, Api.auth.SentCodeTypeEmailCode);
  assert.equal([t.emailPattern, t.length], ['a****@e******.com', 6]);
  assert.is(sent.nextType ?? undefined, undefined, 'no phone types were asked for');
  const code = emu.lastCode(p)!;
  assert.equal([code.type, code.code.length], ['email', 6]);
  assert.is(Number((await signIn(client, p, sent.phoneCodeHash, code.code)).user.id), userId);
});

test('an e-mail user with codeTypes falls back to the phone types after the e-mail (the app left out)', async () => {
  const { p, client } = await fresh({ loginEmail: 'bob@example.org', codeTypes: ['app', 'sms'], codeTimeoutS: 0 });
  const sent = await sendCode(client, p);
  assert.instance(sent.type, Api.auth.SentCodeTypeEmailCode);
  assert.instance(sent.nextType, Api.auth.CodeTypeSms);
  const sms = await resend(client, p, sent.phoneCodeHash);
  assert.is((sms.type as Api.auth.SentCodeTypeSms).length, 5);
});

test('a Fragment number (+888) gets its code on fragment.com, and nothing else', async () => {
  const p = '+888 0445 5312';
  const { userId } = await emu.createUser({ phone: p });
  const { client } = await dcConnected(emu, { requestRetries: 1 });
  const sent = await sendCode(client, p);
  const t = sent.type as Api.auth.SentCodeTypeFragmentSms;
  assert.equal([t.className, t.url, t.length], ['auth.SentCodeTypeFragmentSms', 'https://fragment.com/number/88804455312/code', 5]);
  assert.is(sent.nextType ?? undefined, undefined);
  assert.is(await rpcErrorOf(resend(client, p, sent.phoneCodeHash)), 'SEND_CODE_UNAVAILABLE');
  const code = emu.lastCode('+88804455312')!;
  assert.is(code.type, 'fragment');
  assert.is(Number((await signIn(client, p, sent.phoneCodeHash, code.code)).user.id), userId);
});

test('Telegram test numbers +99966XYYYY: the account appears on DC X at the first sendCode, code XXXXX', async () => {
  const p = '+99966 2 1234';
  const { client } = await dcConnected(emu); // GramJS follows PHONE_MIGRATE_2
  const { phoneCodeHash } = await withTimeout(client.sendCode(API, p));
  assert.is(client.session.dcId, 2);
  assert.equal(emu.lastCode('+9996621234'), { code: '22222', type: 'app' });
  const auth = await signIn(client, p, phoneCodeHash, '22222');
  assert.is((auth.user as Api.User).phone, '9996621234');
  assert.is(emu.world.userByPhone('9996621234')!.dc, 2);
  const { client: other } = await dcConnected(emu, { requestRetries: 1 });
  assert.is(await rpcErrorOf(other.sendCode(API, '+9996641234')), 'PHONE_NUMBER_INVALID', 'DC 4 is not served (3 DCs)');
});

test('phone numbers: possible numbers, test and Fragment numbers are taken; the rest is PHONE_NUMBER_INVALID', async () => {
  for (const ok of ['+44 7700 900777', '+1 (201) 555-0177', '+888 1234 5678', '+9996631234']) {
    assert.type((await emu.createUser({ phone: ok })).userId, 'number', ok);
  }
  assert.is(emu.world.userByPhone('9996631234')!.dc, 3, 'a test number lives on its DC');
  for (const bad of ['+1', 'abc', '+44 7700', '+1234567890123456', '+888 123']) {
    await emu.createUser({ phone: bad }).then(() => assert.unreachable(bad), (e: Error) => assert.is(e.message, 'PHONE_NUMBER_INVALID', bad));
  }
  const { client } = await dcConnected(emu, { requestRetries: 1 });
  assert.is(await rpcErrorOf(client.sendCode(API, '+1')), 'PHONE_NUMBER_INVALID');
  assert.is(await rpcErrorOf(client.sendCode(API, '+447700123456')), 'PHONE_NUMBER_INVALID', 'no sign-up: nobody has this number');
});

test('createUser checks the code options', async () => {
  const bad: Array<[Partial<NewUser>, RegExp]> = [
    [{ codeTypes: ['sms', 'app'] }, /app can only come first/], [{ codeTypes: ['pigeon' as never] }, /unknown code type/],
    [{ codeTypes: [] }, /must not be empty/], [{ codeTypes: ['sms', 'sms'] }, /twice/], [{ loginEmail: 'nope' }, /e-mail/],
    [{ codeTimeoutS: -1 }, /codeTimeoutS/], [{ codeLength: 12 }, /codeLength/], [{ dc: 4 }, /dc must be 1 to 3/],
  ];
  for (const [input, message] of bad) {
    await emu.createUser({ phone: phone(), ...input }).then(() => assert.unreachable(String(message)), (e: Error) => assert.match(e.message, message));
  }
});

test('POST /clock moves the resend timeout too (one clock for every emulator)', async () => {
  const { p, client } = await fresh();
  const sent = await sendCode(client, p);
  assert.is(await rpcErrorOf(resend(client, p, sent.phoneCodeHash)), 'FLOOD_WAIT_60');
  const res = await fetch(`${emu.control}/clock`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ advanceS: 60 }) });
  assert.is(res.status, 200);
  assert.instance((await resend(client, p, sent.phoneCodeHash)).type, Api.auth.SentCodeTypeSms);
});

test('auth.cancelCode: the code stops working', async () => {
  const { p, client } = await fresh();
  const sent = await sendCode(client, p);
  assert.is(await withTimeout(client.invoke(new Api.auth.CancelCode({ phoneNumber: p, phoneCodeHash: sent.phoneCodeHash }))), true);
  assert.is(await rpcErrorOf(signIn(client, p, sent.phoneCodeHash, emu.lastCode(p)!.code)), 'PHONE_CODE_EXPIRED');
});

test.run();
