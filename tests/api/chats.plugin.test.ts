import { randomUUID } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { body, routesServer, type RoutesServer } from './routes-harness.ts';

let t: RoutesServer;
test.before(async () => { t = await routesServer(); });
test.after(async () => { await t.close(); });

const inject = (method: string, url: string, headers: Record<string, string>, payload?: object) =>
  t.server.inject({ method, url, headers, ...(payload && { payload }) });

async function setup() {
  const sub = `u-${randomUUID()}`;
  const as = t.as(sub);
  const res = await inject('POST', '/v1/connections', as, { platform: 'telegram', kind: 'user', method: 'qr' });
  return { sub, as, conn: body(res).id as string };
}

const auditOf = (sub: string) => t.sql<{ action: string; target: string; details: Record<string, unknown> }[]>`
  select action, target, details from audit where owner = ${sub} and action like 'chat.%' order by id`;

test('add → 201 Chat in the API shape, with an audit entry naming it; list and get return it', async () => {
  const { sub, as, conn } = await setup();
  const res = await inject('POST', `/v1/connections/${conn}/chats`, as, { chat: '@release_admin' });
  assert.is(res.statusCode, 201);
  const chat = body(res);
  assert.equal(Object.keys(chat).sort(), ['canSend', 'checkedAt', 'connectionId', 'id', 'isAdmin', 'platformChatId', 'rights', 'title', 'type', 'username']);
  assert.is(chat.connectionId, conn);
  assert.is(chat.isAdmin, true);
  assert.equal(chat.rights, { postMessages: true, editMessages: true });
  assert.match(chat.platformChatId, /^-100\d+$/);
  const audit = await auditOf(sub);
  assert.equal(audit.map((a) => [a.action, a.target]), [['chat.added', chat.id]]);
  assert.is(audit[0]!.details.platformChatId, chat.platformChatId);

  const list = body(await inject('GET', `/v1/connections/${conn}/chats`, as));
  assert.equal(list, { items: [chat] });
  const one = await inject('GET', `/v1/connections/${conn}/chats/${chat.id}`, as);
  assert.is(one.statusCode, 200);
  assert.equal(body(one), chat);
});

test('every accepted reference form reaches the supervisor normalised; junk is 400 before any check', async () => {
  const { as, conn } = await setup();
  const forms: [string, string][] = [
    ['@some_channel', '@some_channel'],
    ['-1001234567890', '-1001234567890'],
    ['https://t.me/some_group', '@some_group'],
    ['t.me/+AbCdEf0123_-', 'https://t.me/+AbCdEf0123_-'],
    ['https://t.me/joinchat/AbCdEfGh12', 'https://t.me/+AbCdEfGh12'],
  ];
  for (const [given, passed] of forms) {
    const before = t.supervisor.calls.length;
    const res = await inject('POST', `/v1/connections/${conn}/chats`, as, { chat: given });
    assert.ok([200, 201].includes(res.statusCode), given);
    const call = t.supervisor.calls.slice(before).find((c) => c.method === 'checkChat');
    assert.is(call?.args[2], passed, given);
  }
  for (const junk of ['', 'name', '@a', '@has space', 'https://evil.example/x', 't.me/', '12a', 'https://t.me/+short', 'x'.repeat(300)]) {
    const before = t.supervisor.calls.length;
    const res = await inject('POST', `/v1/connections/${conn}/chats`, as, { chat: junk });
    assert.is(res.statusCode, 400, junk);
    assert.is(body(res).error.code, 'VALIDATION_ERROR');
    assert.is(t.supervisor.calls.length, before, 'refused before the platform is asked');
  }
  assert.is((await inject('POST', `/v1/connections/${conn}/chats`, as, { chat: '@ok_name', requireAdmin: 'maybe' })).statusCode, 400);
  assert.is((await inject('POST', `/v1/connections/${conn}/chats`, as, { chat: '@ok_name', title: 'x' })).statusCode, 400);
});

test('adding the same chat again refreshes it: 200, same id, one row', async () => {
  const { sub, as, conn } = await setup();
  const first = body(await inject('POST', `/v1/connections/${conn}/chats`, as, { chat: '@twice_chan' }));
  t.supervisor.titles.set('@twice_chan', 'Renamed');
  const again = await inject('POST', `/v1/connections/${conn}/chats`, as, { chat: 'https://t.me/twice_chan' });
  assert.is(again.statusCode, 200);
  assert.is(body(again).id, first.id);
  assert.is(body(again).title, 'Renamed');
  const [{ n }] = await t.sql<{ n: number }[]>`select count(*)::int as n from chats where owner = ${sub}`;
  assert.is(n, 1);
  assert.equal((await auditOf(sub)).map((a) => a.action), ['chat.added', 'chat.refreshed']);
});

test('requireAdmin and not admin → 422 TG_NOT_ADMIN, nothing stored, nothing audited; platform refusals pass through', async () => {
  const { sub, as, conn } = await setup();
  const res = await inject('POST', `/v1/connections/${conn}/chats`, as, { chat: '@plain_member', requireAdmin: true });
  assert.is(res.statusCode, 422);
  assert.is(body(res).error.code, 'TG_NOT_ADMIN');
  const ok = await inject('POST', `/v1/connections/${conn}/chats`, as, { chat: '@the_admin_chan', requireAdmin: true });
  assert.is(ok.statusCode, 201);
  for (const [chat, code] of [['@missing_chan', 'TG_CHAT_NOT_FOUND'], ['@outsider_chan', 'TG_NOT_MEMBER']]) {
    const r = await inject('POST', `/v1/connections/${conn}/chats`, as, { chat: chat! });
    assert.is(r.statusCode, 422);
    assert.is(body(r).error.code, code);
  }
  const rows = await t.sql<{ username: string }[]>`select username from chats where owner = ${sub}`;
  assert.equal(rows.map((r) => r.username), ['the_admin_chan']);
  assert.equal((await auditOf(sub)).map((a) => a.action), ['chat.added']);
});

test('refresh=true re-checks through the connection and stores the result', async () => {
  const { as, conn } = await setup();
  const chat = body(await inject('POST', `/v1/connections/${conn}/chats`, as, { chat: '-1009876543210' }));
  t.supervisor.titles.set('-1009876543210', 'New title');
  const plain = body(await inject('GET', `/v1/connections/${conn}/chats/${chat.id}`, as));
  assert.is(plain.title, chat.title, 'no re-check without refresh');
  const fresh = await inject('GET', `/v1/connections/${conn}/chats/${chat.id}?refresh=true`, as);
  assert.is(fresh.statusCode, 200);
  assert.is(body(fresh).title, 'New title');
  assert.ok(body(fresh).checkedAt >= chat.checkedAt);
  const call = t.supervisor.calls.filter((c) => c.method === 'checkChat').at(-1);
  assert.equal(call?.args, [call?.args[0], conn, '-1009876543210']);
  assert.is(body(await inject('GET', `/v1/connections/${conn}/chats/${chat.id}`, as)).title, 'New title');
  assert.is((await inject('GET', `/v1/connections/${conn}/chats/${chat.id}?refresh=yes`, as)).statusCode, 400);
});

test('delete → 204 with an audit entry; again → 404 and the audit entry of the failed delete rolls back', async () => {
  const { sub, as, conn } = await setup();
  const chat = body(await inject('POST', `/v1/connections/${conn}/chats`, as, { chat: '@gone_soon' }));
  const del = await inject('DELETE', `/v1/connections/${conn}/chats/${chat.id}`, as);
  assert.is(del.statusCode, 204);
  assert.is((await inject('GET', `/v1/connections/${conn}/chats/${chat.id}`, as)).statusCode, 404);
  // The handler writes the audit entry first and then fails on the missing row: the entry must go.
  const again = await inject('DELETE', `/v1/connections/${conn}/chats/${chat.id}`, as);
  assert.is(again.statusCode, 404);
  assert.equal((await auditOf(sub)).map((a) => [a.action, a.target]), [['chat.added', chat.id], ['chat.removed', chat.id]]);
});

test('connection deleted between the check and the insert → 404; the audit entry written before the failed insert is gone', async () => {
  const { sub, as, conn } = await setup();
  t.supervisor.afterCheck = async (owner, id) => {
    await t.sql`delete from connections where id = ${id} and owner = ${owner}`;
  };
  try {
    const res = await inject('POST', `/v1/connections/${conn}/chats`, as, { chat: '@race_chan' });
    assert.is(res.statusCode, 404);
    assert.is(body(res).error.code, 'NOT_FOUND');
  } finally {
    t.supervisor.afterCheck = undefined;
  }
  assert.is((await auditOf(sub)).length, 0);
  const [{ n }] = await t.sql<{ n: number }[]>`select count(*)::int as n from chats where owner = ${sub}`;
  assert.is(n, 0);
});

test('markup from the platform comes back verbatim as JSON data', async () => {
  const { as, conn } = await setup();
  const title = '<script>alert("x")</script><img src=x onerror=alert(1)> & \'"';
  t.supervisor.titles.set('@markup_chan', title);
  const res = await inject('POST', `/v1/connections/${conn}/chats`, as, { chat: '@markup_chan' });
  assert.is(res.statusCode, 201);
  assert.match(String(res.headers['content-type']), /^application\/json/);
  assert.is(body(res).title, title);
  const list = await inject('GET', `/v1/connections/${conn}/chats`, as);
  assert.is(body(list).items[0].title, title);
  assert.match(String(list.headers['content-type']), /^application\/json/);
});

test('chats of one connection are not visible under another connection of the same owner', async () => {
  const { as, conn } = await setup();
  const other = body(await inject('POST', '/v1/connections', as, { platform: 'telegram', kind: 'user', method: 'qr' })).id;
  const chat = body(await inject('POST', `/v1/connections/${conn}/chats`, as, { chat: '@mine_here' }));
  assert.is((await inject('GET', `/v1/connections/${other}/chats/${chat.id}`, as)).statusCode, 404);
  assert.is((await inject('DELETE', `/v1/connections/${other}/chats/${chat.id}`, as)).statusCode, 404);
  assert.equal(body(await inject('GET', `/v1/connections/${other}/chats`, as)), { items: [] });
});

test.run();
