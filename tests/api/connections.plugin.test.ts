import { randomUUID } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { body, routesServer, type RoutesServer } from './routes-harness.ts';

const phone = '+12015550123'; // a valid US number (the max metadata refuses the 555-01xx fiction range too)
let t: RoutesServer;

const post = (url: string, headers: Record<string, string>, payload?: unknown) => t.server.inject({ method: 'POST', url, headers, ...(payload !== undefined && { payload: payload as object }) });
const get = (url: string, headers: Record<string, string>, extra: Record<string, string> = {}) => t.server.inject({ method: 'GET', url, headers: { ...headers, ...extra } });

async function connect(as: Record<string, string>, payload: object = { platform: 'telegram', kind: 'user', phone }) {
  const res = await post('/v1/connections', as, payload);
  assert.is(res.statusCode, 201, res.payload);
  return body(res);
}

const create = suite('POST /v1/connections');
create.before(async () => { t = await routesServer(); });
create.after(async () => { await t.close(); });

create('phone login: 201 connecting → awaiting-code, phone normalised to E.164 and masked in the answer', async () => {
  const as = t.as();
  const res = await post('/v1/connections', as, { platform: 'telegram', kind: 'user', phone: '+1 (201) 555-0123' });
  assert.is(res.statusCode, 201);
  const c = body(res);
  assert.is(c.status, 'awaiting-code');
  assert.is(c.kind, 'user');
  assert.is(c.phone, '+12*****0123');
  assert.not.match(res.payload, /5550123/);
  assert.is(res.headers.location, `/v1/connections/${c.id}`);
  const call = t.supervisor.calls.find((x) => x.method === 'create' && (x.args[1] as { phone?: string }).phone);
  assert.equal(call?.args[1], { platform: 'telegram', kind: 'user', method: 'phone', phone });
});

create('malformed phone numbers → 400 TG_PHONE_INVALID, nothing created', async () => {
  const sub = `u-${randomUUID()}`;
  for (const bad of ['+1', 'abc', '12345', '+999', 'not a phone', '+1201555012345678']) {
    const res = await post('/v1/connections', t.as(sub), { platform: 'telegram', kind: 'user', phone: bad });
    assert.is(res.statusCode, 400, bad);
    assert.is(body(res).error.code, 'TG_PHONE_INVALID', bad);
    assert.not.ok(res.payload.includes(bad) && bad.startsWith('+'), 'the number is not echoed');
  }
  const [{ n }] = await t.sql<{ n: number }[]>`select count(*)::int as n from connections where owner = ${sub}`;
  assert.is(n, 0);
});

create('numbers Telegram takes are accepted: possible numbers (whether assigned is Telegram\'s to say), its test numbers, Fragment +888', async () => {
  const sub = `u-${randomUUID()}`;
  for (const [given, e164] of [['+447700900123', '+447700900123'], ['+99966 2 1234', '+9996621234'], ['+88804455312', '+88804455312'], ['+44 (7700) 900-124', '+447700900124']]) {
    const c = await connect(t.as(sub), { platform: 'telegram', kind: 'user', phone: given });
    assert.is(c.status, 'awaiting-code', given);
    const call = t.supervisor.calls.filter((x) => x.method === 'create').at(-1);
    assert.is((call?.args[1] as { phone?: string }).phone, e164, given);
  }
});

create('bot options: updates poll|none and takeOver are for bots only; anything else is 400 VALIDATION_ERROR', async () => {
  const sub = `u-${randomUUID()}`;
  for (const bad of [
    { platform: 'telegram', kind: 'bot', token: '123456:ABC-def', updates: 'sometimes' },
    { platform: 'telegram', kind: 'bot', token: '123456:ABC-def', takeOver: 'yes' },
    { platform: 'telegram', kind: 'user', phone, updates: 'none' },
    { platform: 'telegram', kind: 'user', phone, takeOver: true },
  ]) {
    const res = await post('/v1/connections', t.as(sub), bad);
    assert.is(res.statusCode, 400, JSON.stringify(bad));
    assert.is(body(res).error.code, 'VALIDATION_ERROR');
  }
  const c = await connect(t.as(sub), { platform: 'telegram', kind: 'bot', token: '123456:ABC-none', updates: 'none' });
  assert.is(c.status, 'active');
});

create('QR login: 201 awaiting-qr with login.qr', async () => {
  const c = await connect(t.as(), { platform: 'telegram', kind: 'user', method: 'qr' });
  assert.is(c.status, 'awaiting-qr');
  assert.match(c.login.qr.url, /^tg:\/\/login\?token=/);
});

create('bot: 201 active; a refused token → 422 TG_BOT_TOKEN_INVALID and nothing stored; same bot twice → 409', async () => {
  const sub = `u-${randomUUID()}`;
  const c = await connect(t.as(sub), { platform: 'telegram', kind: 'bot', token: '123456:ABC-def_9' });
  assert.is(c.status, 'active');
  assert.is(c.kind, 'bot');
  assert.not.match(JSON.stringify(c), /ABC-def/);
  const refused = await post('/v1/connections', t.as(sub), { platform: 'telegram', kind: 'bot', token: '0:nope' });
  assert.is(refused.statusCode, 422);
  assert.is(body(refused).error.code, 'TG_BOT_TOKEN_INVALID');
  const again = await post('/v1/connections', t.as(sub), { platform: 'telegram', kind: 'bot', token: '123456:ABC-def_9' });
  assert.is(again.statusCode, 409);
  const [{ n }] = await t.sql<{ n: number }[]>`select count(*)::int as n from connections where owner = ${sub}`;
  assert.is(n, 1);
});

create('malformed bodies → 400 VALIDATION_ERROR with one detail per field; secrets not echoed', async () => {
  const as = t.as();
  const cases: [unknown, string[]][] = [
    [{ platform: 'telegram', kind: 'bot', token: 'abc:def' }, ['token']],
    [{ platform: 'telegram', kind: 'bot', token: '123:has space' }, ['token']],
    [{ platform: 'telegram', kind: 'bot' }, ['token']],
    [{ platform: 'telegram', kind: 'user' }, ['phone']],
    [{ platform: 'telegram', kind: 'user', phone, token: '1:a' }, ['token']],
    [{ platform: 'telegram', kind: 'user', method: 'qr', phone }, ['phone']],
    [{ platform: 'whatsapp', kind: 'user', phone }, ['platform']],
    [{ platform: 'telegram', kind: 'robot' }, ['kind']],
    [{ platform: 'telegram', kind: 'user', phon: phone }, ['phone', 'phon']],
    [{ platform: 'telegram', kind: 'user', phone, admin: true }, ['admin']],
  ];
  for (const [payload, paths] of cases) {
    const res = await post('/v1/connections', as, payload);
    assert.is(res.statusCode, 400, JSON.stringify(payload));
    const err = body(res).error;
    assert.is(err.code, 'VALIDATION_ERROR');
    assert.equal(err.details.map((d: { path: string }) => d.path).sort(), paths.sort(), JSON.stringify(payload));
    assert.not.match(res.payload, /has space|abc:def/);
  }
  const notJson = await t.server.inject({ method: 'POST', url: '/v1/connections', headers: { ...as, 'content-type': 'application/json' }, payload: '{"kind":' });
  assert.is(notJson.statusCode, 400);
  assert.is(body(notJson).error.code, 'VALIDATION_ERROR');
});

create.run();

const login = suite('login steps, read, list, reconnect, delete');
login.before(async () => { t = await routesServer(); });
login.after(async () => { await t.close(); });

login('code/resend: 200 with the new code type while awaiting a code; a body is 400; after login 409; a malformed id 404', async () => {
  const as = t.as();
  const c = await connect(as);
  const again = await post(`/v1/connections/${c.id}/code/resend`, as);
  assert.is(again.statusCode, 200, again.payload);
  assert.equal([body(again).status, body(again).login.codeType], ['awaiting-code', 'sms']);
  const withBody = await post(`/v1/connections/${c.id}/code/resend`, as, { type: 'sms' });
  assert.is(withBody.statusCode, 400);
  assert.is(body(withBody).error.code, 'VALIDATION_ERROR');
  assert.is((await post(`/v1/connections/not-a-uuid/code/resend`, as)).statusCode, 404);
  assert.is(body(await post(`/v1/connections/${c.id}/code`, as, { code: '12345' })).status, 'active');
  const late = await post(`/v1/connections/${c.id}/code/resend`, as);
  assert.is(late.statusCode, 409);
  assert.is(body(late).error.code, 'INVALID_STATE');
});

login('password recovery: 200 emailPattern in awaiting-2fa, 409 elsewhere; the code signs in; malformed code 400; the new password is not echoed', async () => {
  const as = t.as();
  const c = await connect(as);
  assert.is(body(await post(`/v1/connections/${c.id}/password/recovery`, as)).error.code, 'INVALID_STATE');
  assert.is(body(await post(`/v1/connections/${c.id}/code`, as, { code: '22222' })).status, 'awaiting-2fa');
  const sent = await post(`/v1/connections/${c.id}/password/recovery`, as);
  assert.is(sent.statusCode, 200);
  assert.equal(body(sent), { emailPattern: 'a***@example.org' });
  for (const bad of [{}, { code: 'abc' }, { code: '123456', newPassword: '' }, { code: '123456', extra: 1 }]) {
    const res = await post(`/v1/connections/${c.id}/password/recovery/code`, as, bad);
    assert.is(res.statusCode, 400, JSON.stringify(bad));
    assert.is(body(res).error.code, 'VALIDATION_ERROR');
  }
  const wrong = await post(`/v1/connections/${c.id}/password/recovery/code`, as, { code: '000000', newPassword: 'n3w-s3cret' });
  assert.is(wrong.statusCode, 422);
  assert.not.match(wrong.payload, /n3w-s3cret/);
  const ok = await post(`/v1/connections/${c.id}/password/recovery/code`, as, { code: '123456', newPassword: 'n3w-s3cret' });
  assert.is(ok.statusCode, 200);
  assert.is(body(ok).status, 'active');
  assert.not.match(ok.payload, /n3w-s3cret/);
});

login('code → active; wrong code 422; code when not awaiting → 409; 2FA path with password', async () => {
  const as = t.as();
  const c = await connect(as);
  const wrong = await post(`/v1/connections/${c.id}/code`, as, { code: '00000' });
  assert.is(wrong.statusCode, 422);
  assert.is(body(wrong).error.code, 'TG_CODE_INVALID');
  const ok = await post(`/v1/connections/${c.id}/code`, as, { code: '12345' });
  assert.is(ok.statusCode, 200);
  assert.is(body(ok).status, 'active');
  const late = await post(`/v1/connections/${c.id}/code`, as, { code: '12345' });
  assert.is(late.statusCode, 409);
  assert.is(body(late).error.code, 'INVALID_STATE');

  const d = await connect(as);
  assert.is(body(await post(`/v1/connections/${d.id}/password`, as, { password: 'x' })).error.code, 'INVALID_STATE');
  const twoFa = body(await post(`/v1/connections/${d.id}/code`, as, { code: '22222' }));
  assert.is(twoFa.status, 'awaiting-2fa');
  assert.is(twoFa.login.passwordHint, 'pet');
  const bad = await post(`/v1/connections/${d.id}/password`, as, { password: 'wrong-s3cret' });
  assert.is(bad.statusCode, 422);
  assert.is(body(bad).error.code, 'TG_PASSWORD_INVALID');
  assert.not.match(bad.payload, /s3cret/, 'the password is not echoed');
  const done = await post(`/v1/connections/${d.id}/password`, as, { password: 'correct horse' });
  assert.is(done.statusCode, 200);
  assert.is(body(done).status, 'active');
});

login('code and password bodies are validated', async () => {
  const as = t.as();
  const c = await connect(as);
  for (const code of ['123', '123456789', '12a45', 12345, '', null]) {
    const res = await post(`/v1/connections/${c.id}/code`, as, { code });
    assert.is(res.statusCode, 400, String(code));
    assert.is(body(res).error.code, 'VALIDATION_ERROR');
  }
  for (const password of ['', 'x'.repeat(257)]) {
    const res = await post(`/v1/connections/${c.id}/password`, as, { password });
    assert.is(res.statusCode, 400);
  }
  assert.is((await post(`/v1/connections/${c.id}/code`, as, { code: '1234', extra: 1 })).statusCode, 400);
});

login('GET /{id}/qr: JSON by default, PNG and SVG by Accept, never cached; 409 when not awaiting a scan', async () => {
  const as = t.as();
  const c = await connect(as, { platform: 'telegram', kind: 'user', method: 'qr' });
  const json = await get(`/v1/connections/${c.id}/qr`, as);
  assert.is(json.statusCode, 200);
  assert.equal(body(json), c.login.qr);
  assert.is(json.headers['cache-control'], 'no-store');
  const png = await get(`/v1/connections/${c.id}/qr`, as, { accept: 'image/png' });
  assert.is(png.statusCode, 200);
  assert.match(String(png.headers['content-type']), /^image\/png/);
  assert.equal([...png.rawPayload.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const svg = await get(`/v1/connections/${c.id}/qr`, as, { accept: 'application/json;q=0.5, image/svg+xml' });
  assert.match(String(svg.headers['content-type']), /^image\/svg\+xml/);
  assert.match(svg.payload, /^<svg[\s\S]*<\/svg>\s*$/);
  for (const accept of ['constructor', '__proto__, toString', 'image/*', 'text/html', 'image/png;q=0, application/json']) {
    const res = await get(`/v1/connections/${c.id}/qr`, as, { accept });
    assert.is(res.statusCode, 200, accept);
    assert.equal(body(res), c.login.qr, accept);
  }
  const phoneConn = await connect(as);
  const refused = await get(`/v1/connections/${phoneConn.id}/qr`, as, { accept: 'image/png' });
  assert.is(refused.statusCode, 409);
  assert.is(body(refused).error.code, 'INVALID_STATE');
});

login('list: own only, filters, keyset pages without repeats or gaps', async () => {
  const as = t.as();
  const other = t.as();
  await connect(other);
  const made = [];
  for (let i = 0; i < 5; i++) made.push((await connect(as)).id);
  made.push((await connect(as, { platform: 'telegram', kind: 'bot', token: `${900 + Math.floor(Math.random() * 1e6)}:tok` })).id);
  const seen: string[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const res = await get(`/v1/connections?limit=2${cursor ? `&cursor=${cursor}` : ''}`, as);
    assert.is(res.statusCode, 200);
    const page = body(res);
    seen.push(...page.items.map((c: { id: string }) => c.id));
    cursor = page.nextCursor;
    pages++;
  } while (cursor);
  assert.is(pages, 3);
  assert.equal(seen.sort(), [...made].sort());
  const bots = body(await get('/v1/connections?kind=bot', as)).items;
  assert.is(bots.length, 1);
  assert.is(bots[0].kind, 'bot');
  assert.is(body(await get('/v1/connections?status=active&kind=user', as)).items.length, 0);
  assert.is(body(await get('/v1/connections', as)).nextCursor, undefined);
  for (const q of ['limit=0', 'limit=101', 'status=asleep', 'kind=x', 'cursor=@@', `cursor=${Buffer.from('nonsense').toString('base64url')}`, 'owner=someone']) {
    const res = await get(`/v1/connections?${q}`, as);
    assert.is(res.statusCode, 400, q);
    assert.is(body(res).error.code, 'VALIDATION_ERROR', q);
  }
});

login('pages stay exact when connections share a millisecond or a timestamp', async () => {
  const sub = `u-${randomUUID()}`;
  const as = t.as(sub);
  // Five rows inside one millisecond, two of them with the very same timestamp (ordered by id).
  const stamps = ['.000100', '.000200', '.000300', '.000300', '.000900', '.001000', '.500000'];
  for (const us of stamps) {
    await t.sql`insert into connections (id, owner, platform, kind, shard, created_at) values (${randomUUID()}, ${sub}, 'telegram', 'user', 0, ${`2026-01-01 00:00:00${us}+00`}::text::timestamptz)`;
  }
  const expected = (await t.sql<{ id: string }[]>`select id::text as id from connections where owner = ${sub} order by created_at, id`).map((r) => r.id);
  for (const limit of [1, 2, 3]) {
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = body(await get(`/v1/connections?limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`, as));
      assert.ok(page.items.length <= limit);
      seen.push(...page.items.map((c: { id: string }) => c.id));
      cursor = page.nextCursor;
    } while (cursor && seen.length <= stamps.length);
    assert.equal(seen, expected, `limit ${limit}`);
  }
});

login('GET one, reconnect → 202, DELETE → 204 then 404', async () => {
  const as = t.as();
  const c = await connect(as);
  const one = await get(`/v1/connections/${c.id}`, as);
  assert.is(one.statusCode, 200);
  assert.is(body(one).id, c.id);
  const re = await post(`/v1/connections/${c.id}/reconnect`, as);
  assert.is(re.statusCode, 202);
  assert.is(body(re).status, 'connecting');
  assert.is((await post(`/v1/connections/${c.id}/reconnect`, as, {})).statusCode, 202, 'an empty JSON body is tolerated');
  assert.is((await post(`/v1/connections/${c.id}/reconnect`, as, { force: true })).statusCode, 400);
  const del = await t.server.inject({ method: 'DELETE', url: `/v1/connections/${c.id}`, headers: as });
  assert.is(del.statusCode, 204);
  assert.is(del.payload, '');
  assert.is((await get(`/v1/connections/${c.id}`, as)).statusCode, 404);
});

login.run();

// Every route with an id, called by a second caller on the first caller's resources: 404, and the
// same answer as for an id that does not exist at all (nothing to learn from the difference).
const tenancy = suite('tenancy and malformed ids');
tenancy.before(async () => { t = await routesServer(); });
tenancy.after(async () => { await t.close(); });

tenancy('a second caller gets 404 NOT_FOUND on every route with the first caller\'s ids; nothing changes', async () => {
  const alice = t.as();
  const user = await connect(alice);
  const qr = await connect(alice, { platform: 'telegram', kind: 'user', method: 'qr' });
  const chat = body(await post(`/v1/connections/${user.id}/chats`, alice, { chat: '@alice_chan' }));
  assert.ok(chat.id);
  const routes: [string, string, unknown?][] = [
    ['GET', `/v1/connections/${user.id}`],
    ['POST', `/v1/connections/${user.id}/code`, { code: '12345' }],
    ['POST', `/v1/connections/${user.id}/code/resend`],
    ['POST', `/v1/connections/${user.id}/password/recovery`],
    ['POST', `/v1/connections/${user.id}/password/recovery/code`, { code: '123456' }],
    ['POST', `/v1/connections/${user.id}/password`, { password: 'pw' }],
    ['GET', `/v1/connections/${qr.id}/qr`],
    ['POST', `/v1/connections/${user.id}/reconnect`],
    ['DELETE', `/v1/connections/${user.id}`],
    ['POST', `/v1/connections/${user.id}/chats`, { chat: '@alice_chan' }],
    ['GET', `/v1/connections/${user.id}/chats`],
    ['GET', `/v1/connections/${user.id}/chats/${chat.id}`],
    ['GET', `/v1/connections/${user.id}/chats/${chat.id}?refresh=true`],
    ['DELETE', `/v1/connections/${user.id}/chats/${chat.id}`],
  ];
  const bob = t.as();
  for (const [method, url, payload] of routes) {
    const res = await t.server.inject({ method, url, headers: bob, ...(payload !== undefined && { payload: payload as object }) });
    assert.is(res.statusCode, 404, `${method} ${url}`);
    assert.equal(body(res), { error: { code: 'NOT_FOUND', message: 'not found' } }, `${method} ${url}`);
    // An unknown id answers exactly the same.
    const unknown = url.replaceAll(user.id, randomUUID()).replaceAll(qr.id, randomUUID());
    const res2 = await t.server.inject({ method, url: unknown, headers: bob, ...(payload !== undefined && { payload: payload as object }) });
    assert.equal(body(res2), body(res), `${method} ${unknown}`);
  }
  // Bob's chat id under his own connection does not reach Alice's chat either.
  const bobs = await connect(bob);
  assert.is((await get(`/v1/connections/${bobs.id}/chats/${chat.id}`, bob)).statusCode, 404);
  assert.is(body(await get('/v1/connections', bob)).items.length, 1);
  // Alice's data is untouched.
  assert.is(body(await get(`/v1/connections/${user.id}`, alice)).status, 'awaiting-code');
  assert.is(body(await get(`/v1/connections/${user.id}/chats`, alice)).items.length, 1);
});

tenancy('malformed ids → 404 NOT_FOUND (never 400 or 500), whatever the body', async () => {
  const as = t.as();
  const c = await connect(as);
  for (const bad of ['x', '123', 'not-a-uuid', `${c.id}x`, "'%20or%201=1%20--", '%00', '..%2F..', 'a'.repeat(300)]) {
    for (const [method, url, payload] of [
      ['GET', `/v1/connections/${bad}`], ['POST', `/v1/connections/${bad}/code`, { nonsense: true }], ['DELETE', `/v1/connections/${bad}`],
      ['GET', `/v1/connections/${bad}/qr`], ['POST', `/v1/connections/${bad}/reconnect`], ['GET', `/v1/connections/${bad}/chats`],
      ['GET', `/v1/connections/${c.id}/chats/${bad}`], ['DELETE', `/v1/connections/${c.id}/chats/${bad}`],
    ] as [string, string, object?][]) {
      const res = await t.server.inject({ method, url, headers: as, ...(payload && { payload }) });
      assert.is(res.statusCode, 404, `${method} ${url}`);
      assert.is(body(res).error.code, 'NOT_FOUND');
    }
  }
});

tenancy('OpenAPI documents every route with its error codes and examples', async () => {
  const doc = body(await t.server.inject('/openapi.json'));
  const expect: [string, string, string[]][] = [
    ['/v1/connections', 'post', ['201', '400', '401', '403', '409', '422', '429', '503']],
    ['/v1/connections', 'get', ['200', '400', '401', '429']],
    ['/v1/connections/{id}', 'get', ['200', '401', '404', '429']],
    ['/v1/connections/{id}/code', 'post', ['200', '400', '401', '404', '409', '422', '429', '503']],
    ['/v1/connections/{id}/code/resend', 'post', ['200', '400', '401', '404', '409', '422', '429', '503']],
    ['/v1/connections/{id}/password/recovery', 'post', ['200', '400', '401', '404', '409', '422', '429', '503']],
    ['/v1/connections/{id}/password/recovery/code', 'post', ['200', '400', '401', '404', '409', '422', '429', '503']],
    ['/v1/connections/{id}/password', 'post', ['200', '400', '401', '404', '409', '422', '429', '503']],
    ['/v1/connections/{id}/qr', 'get', ['200', '401', '404', '409', '429']],
    ['/v1/connections/{id}/reconnect', 'post', ['202', '400', '401', '403', '404', '409', '429', '503']],
    ['/v1/connections/{id}', 'delete', ['204', '401', '404', '429', '503']],
    ['/v1/connections/{id}/chats', 'post', ['200', '201', '400', '401', '403', '404', '422', '429', '503']],
    ['/v1/connections/{id}/chats/{chatId}', 'delete', ['204', '401', '404', '429']],
    ['/v1/audit', 'get', ['200', '400', '401', '429']],
    ['/admin/audit', 'get', ['200', '400', '401', '403', '429']],
    ['/v1/me/export', 'get', ['200', '401', '429']],
    ['/v1/me', 'delete', ['204', '401', '429', '503']],
    ['/v1/me/consents', 'get', ['200', '401', '429']],
    ['/v1/me/consents/{purpose}', 'put', ['200', '400', '401', '429']],
    ['/admin/actors', 'get', ['200', '401', '403', '429']],
    ['/admin/actors/{id}', 'get', ['200', '401', '403', '404', '429']],
    ['/admin/actors/{id}/restart', 'post', ['202', '400', '401', '403', '404', '429']],
  ];
  for (const [path, method, codes] of expect) {
    const op = doc.paths[path]?.[method];
    assert.ok(op, `${method} ${path} documented`);
    assert.equal(Object.keys(op.responses).sort(), codes.sort(), `${method} ${path}`);
  }
  const create = doc.paths['/v1/connections'].post.responses;
  assert.match(create['400'].description, /TG_PHONE_INVALID/);
  assert.match(create['422'].description, /TG_BOT_TOKEN_INVALID/);
  assert.match(doc.paths['/v1/connections/{id}/chats'].post.responses['422'].description, /TG_NOT_ADMIN/);
  assert.ok(doc.components.schemas.Connection && doc.components.schemas.Chat && doc.components.schemas.AuditEntry);
  assert.match(JSON.stringify(doc.components.schemas.CreateConnection), /\+12015550123/);
  assert.equal(doc.components.schemas.CreateConnection.required, ['kind'], 'phone and token are conditional, not both required');
  assert.ok(doc.paths['/v1/connections/{id}/qr'].get.responses['200'].content['image/png'], 'QR image documented');
});

tenancy.run();

const limits = suite('rate limit group connect');
limits.before(async () => { t = await routesServer({ rateLimit: { connect: 10, send: 100, status: 1000 } }); });
limits.after(async () => { await t.close(); });

limits('create, code, password and reconnect share the connect group: the 11th call in a minute is 429', async () => {
  const as = t.as();
  const c = await connect(as);
  const calls = [
    () => post('/v1/connections', as, { platform: 'telegram', kind: 'user', method: 'qr' }),
    () => post(`/v1/connections/${c.id}/code`, as, { code: '00000' }),
    () => post(`/v1/connections/${c.id}/password`, as, { password: 'pw' }),
    () => post(`/v1/connections/${c.id}/reconnect`, as),
  ];
  // connect() above was call 1.
  for (let i = 2; i <= 10; i++) {
    const res = await calls[i % calls.length]!();
    assert.ok(res.statusCode !== 429, `call ${i}`);
    assert.is(res.headers['ratelimit-remaining'], String(10 - i));
  }
  const refused = await calls[0]!();
  assert.is(refused.statusCode, 429);
  assert.is(body(refused).error.code, 'RATE_LIMITED');
  assert.ok(Number(refused.headers['retry-after']) > 0);
  // Reads are in the status group and still pass; another caller is unaffected.
  assert.is((await get(`/v1/connections/${c.id}`, as)).statusCode, 200);
  assert.is((await post('/v1/connections', t.as(), { platform: 'telegram', kind: 'user', method: 'qr' })).statusCode, 201);
  assert.is((await t.server.inject({ method: 'DELETE', url: `/v1/connections/${c.id}`, headers: as })).statusCode, 204, 'DELETE is not in connect');
});

limits.run();
