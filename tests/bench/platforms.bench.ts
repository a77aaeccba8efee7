// WhatsApp messages through the whole daemon (startApp in-process, real Postgres) to the Cloud API
// emulator over HTTP, with its limits on (80 messages/s per number, the pair rate limit, the 24-hour
// window) and statuses coming back by signed webhook. Prints sent, lost (not sent), duplicated (one
// text seen twice by the emulator), failed, and messages per minute from the first accept to the last
// `sent`. Recipients get at most --per-recipient messages (the pair limit's burst is 45).
//
// Then Instagram and Threads posts: connected accounts (OAuth through the emulator's redirect), each
// publishing its share one after another (container create → status → publish; Instagram a small
// photo the emulator downloads, Threads text) under the real supervisor and drivers on real Postgres,
// accounts in parallel. Prints posts, lost (not in the emulator), duplicated (one caption twice) and
// posts per minute. The emulators' daily limits are raised so that the run measures throughput.
// Usage: npm run bench:platforms -- [--messages 1000] [--numbers 2] [--per-recipient 10] [--posts 200] [--accounts 4] [--only whatsapp|meta]
import { parseArgs } from 'node:util';
import { startWaWorld } from '../platforms/whatsapp/world.ts';
import { connectAccount, driverOf, message, photoOf, postsOf, startMetaWorld, type MetaPlatform } from '../platforms/meta/user-world.ts';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '1000' }, numbers: { type: 'string', default: '2' }, 'per-recipient': { type: 'string', default: '10' },
    posts: { type: 'string', default: '200' }, accounts: { type: 'string', default: '4' }, only: { type: 'string' },
  },
});
const total = Number(values.messages);
const numbers = Number(values.numbers);
const perRecipient = Number(values['per-recipient']);

if (values.only !== 'meta') await whatsapp();
if (values.only !== 'whatsapp') for (const p of ['instagram', 'threads'] as const) await metaPosts(p, Number(values.posts), Number(values.accounts));

async function metaPosts(platform: MetaPlatform, posts: number, accounts: number): Promise<void> {
  const w = await startMetaWorld(platform, { postLimit: posts + 10 });
  try {
    const conns: Array<{ id: string; accountId: string }> = [];
    for (let i = 0; i < accounts; i++) conns.push(await connectAccount(w, 'bench', `bench_${platform}_${i}`));
    const plan = Array.from({ length: posts }, (_, i) => ({ conn: conns[i % accounts]!, caption: `bench ${platform} ${i}` }));
    let failed = 0;
    const started = Date.now();
    await Promise.all(conns.map(async (c) => {
      const d = driverOf(w, 'bench', c.id);
      for (const p of plan.filter((x) => x.conn === c)) {
        const msg = message(c.id, p.caption, platform === 'instagram' ? photoOf(20_000) : undefined);
        await d.send(msg).catch(() => { failed++; });
      }
    }));
    const seconds = (Date.now() - started) / 1000;
    const seen = (await Promise.all(conns.map((c) => postsOf(w, c.accountId)))).flat().map((p) => p.caption as string);
    const lost = plan.filter((p) => !seen.includes(p.caption)).length;
    const duplicated = seen.length - new Set(seen).size;
    console.log(JSON.stringify({ platform, posts, accounts, published: seen.length, failed, lost, duplicated, seconds: Number(seconds.toFixed(2)), postsPerMin: Math.round((seen.length / seconds) * 60) }));
  } finally {
    await w.close();
  }
}

async function whatsapp(): Promise<void> {
  const w = await startWaWorld({ env: { LOG_LEVEL: 'error' } });
  try {
    await w.control('POST', '/webhook-url', { url: `${w.app.url}/v1/platform-webhooks/whatsapp` });
    const owner = 'bench-platforms';
    const conns: Array<{ id: string; numberId: string }> = [];
    for (let i = 0; i < numbers; i++) {
      const n = await w.number();
      const r = await w.call(owner, 'POST', '/v1/connections', { platform: 'whatsapp', phoneNumberId: n.phoneNumberId, accessToken: n.accessToken });
      if (r.status !== 201) throw new Error(`connect: ${JSON.stringify(r.body)}`);
      conns.push({ id: r.body.id, numberId: n.phoneNumberId });
    }
    for (;;) {
      const states = await Promise.all(conns.map(async (c) => (await w.call(owner, 'GET', `/v1/connections/${c.id}`)).body.status));
      if (states.every((s) => s === 'active')) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    // Each recipient writes first (the service window opens), then gets perRecipient messages.
    const recipients = Math.ceil(total / perRecipient);
    const plan: Array<{ conn: string; numberId: string; to: string; text: string }> = [];
    for (let r = 0; r < recipients; r++) {
      const c = conns[r % conns.length]!;
      const to = `+1555${String(7_000_000 + r).padStart(7, '0')}`;
      await w.control('POST', '/events', { type: 'message', phoneNumberId: c.numberId, from: to, text: 'hi' });
      for (let k = 0; k < perRecipient && plan.length < total; k++) plan.push({ conn: c.id, numberId: c.numberId, to, text: `bench ${r}-${k}` });
    }
    const started = Date.now();
    const ids: string[] = [];
    for (let i = 0; i < plan.length; i += 100) {
      const batch = plan.slice(i, i + 100).map((p) => ({ connectionId: p.conn, chat: p.to, text: p.text }));
      const r = await w.call(owner, 'POST', '/v1/messages/batch', { messages: batch });
      if (r.status !== 202) throw new Error(`batch: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
      ids.push(...r.body.items.map((m: { id: string }) => m.id));
    }
    const done = async () => {
      const rows = await w.db.sql<{ status: string; n: number; last: Date | null }[]>`
        select status, count(*)::int as n, max(sent_at) as last from messages where owner = ${owner} group by status`;
      return Object.fromEntries(rows.map((r) => [r.status, r]));
    };
    let s = await done();
    const deadline = Date.now() + 10 * 60_000;
    while (((s.sent?.n ?? 0) + (s.failed?.n ?? 0)) < ids.length && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      s = await done();
    }
    const seconds = ((s.sent?.last?.getTime() ?? Date.now()) - started) / 1000;
    const seen: Array<{ text: string }> = [];
    for (const c of conns) seen.push(...(await w.control('GET', '/messages', undefined, { phoneNumberId: c.numberId })));
    const texts = seen.map((m) => m.text);
    const dup = texts.length - new Set(texts).size;
    const sent = s.sent?.n ?? 0;
    const lost = plan.filter((p) => !texts.includes(p.text)).length;
    const [{ read }] = await w.db.sql<{ read: number }[]>`select count(*)::int as read from messages where owner = ${owner} and platform_status = 'read'`;
    console.log(JSON.stringify({
      messages: ids.length, numbers, recipients, sent, failed: s.failed?.n ?? 0, lost, duplicated: dup,
      readStatusesApplied: read, seconds: Number(seconds.toFixed(2)), msgsPerMin: Math.round((sent / seconds) * 60),
    }));
  } finally {
    await w.stop();
  }
}
