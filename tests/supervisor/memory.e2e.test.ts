// The 50 MB budget for real: an account flooded with updates from hundreds of strangers (each one
// an entity GramJS would cache forever) stays bounded, or is stopped without harming its neighbour.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startEmulator, type Emulator } from '../emulator/index.ts';
import { newPhone, startStack, until, type Stack } from '../helpers/stack.ts';

const KiB = 1024;
let emu: Emulator;
test.before(async () => { emu = await startEmulator(); });
test.after(async () => { await emu.stop(); });

async function login(s: Stack, owner: string): Promise<{ id: string; phone: string; userId: number }> {
  const phone = newPhone();
  const { userId } = await s.emu.createUser({ phone });
  const c = await s.connections.create(owner, { platform: 'telegram', kind: 'user', method: 'phone', phone });
  assert.is((await s.connections.submitCode(owner, c.id, s.emu.lastCode(phone)!.code)).status, 'active');
  return { id: c.id, phone, userId };
}

// Group messages arrive as Updates carrying the sender's entity: 300 strangers, 300 new entities.
async function flood(s: Stack, phone: string, userId: number, senders: number): Promise<void> {
  const strangers: number[] = [];
  for (let i = 0; i < senders; i++) {
    strangers.push((await s.emu.createUser({ phone: newPhone(), firstName: `Stranger ${i}`, username: `stranger_${process.pid}_${i}_${Date.now() % 1e5}` })).userId);
  }
  const { chatId } = s.emu.createChat({
    type: 'supergroup', title: `flood ${Date.now()}`,
    members: [{ id: userId, role: 'member' }, ...strangers.map((id) => ({ id, role: 'member' as const }))],
  });
  for (const from of strangers) s.emu.pushUpdate({ to: phone, fromUserId: from, chatId, text: `spam from ${from}` });
}

test('bounded entity caches keep a flooded account under its budget', async () => {
  const s = await startStack({ emu, account: { entityCacheMax: 100 }, supervisor: { memoryBudgetBytes: 400 * KiB, memoryCheckMs: 3_600_000 } });
  try {
    const a = await login(s, 'carol');
    const received: string[] = [];
    const { bus } = await import('../../src/events/bus.ts');
    const off = bus.subscribe((e) => { if (e.type === 'message.received') received.push((e.data as { text: string }).text); });
    await flood(s, a.phone, a.userId, 300);
    await until(() => received.length >= 300, 'all 300 updates received', 20_000);
    off();
    s.supervisor.checkMemory();
    s.supervisor.checkMemory();
    const actor = s.supervisor.actor(a.id)!;
    assert.is(actor.state, 'active');
    assert.ok(actor.memory.bytes <= 400 * KiB, `accounted ${actor.memory.bytes} B`);
    assert.ok(actor.memory.bytes > 150 * KiB, 'the client itself is accounted');
  } finally {
    await s.close();
  }
});

test('an account that stays over its budget is stopped with MEMORY_BUDGET_EXCEEDED; its neighbour stays active', async () => {
  const s = await startStack({ emu, account: { entityCacheMax: 5000 }, supervisor: { memoryBudgetBytes: 200 * KiB, memoryCheckMs: 3_600_000 } });
  try {
    const hog = await login(s, 'dave');
    const neighbour = await login(s, 'dave');
    await flood(s, hog.phone, hog.userId, 300);
    await until(() => (s.supervisor.actor(hog.id)!.memory.bytes > 200 * KiB), 'hog over budget', 20_000);
    s.supervisor.checkMemory();
    assert.is(s.supervisor.actor(hog.id)!.state, 'active', 'one check over budget trims, it does not stop');
    s.supervisor.checkMemory();
    await until(async () => (await s.connections.get('dave', hog.id)).status === 'error', 'hog stopped');
    assert.is((await s.connections.get('dave', hog.id)).error?.code, 'MEMORY_BUDGET_EXCEEDED');
    assert.is((await s.connections.get('dave', neighbour.id)).status, 'active');
    assert.ok(s.supervisor.actor(neighbour.id)!.memory.bytes < 200 * KiB);
  } finally {
    await s.close();
  }
});

test.run();
