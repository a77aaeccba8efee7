// The interactive login as a person sees it: the CLI in a real terminal (tmux), keys typed with
// send-keys, the screen read with capture-pane. Phone → a wrong code (asked again) → the code →
// the 2FA password (masked) → connected; and a QR drawn in the terminal, accepted on the "phone".
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createClient } from '../../../clients/typescript/src/index.ts';
import { until } from '../../helpers/stack.ts';
import { startDaemon, type Daemon } from './daemon.ts';

const root = new URL('../../../', import.meta.url).pathname;
// Our own tmux server (its own socket): nothing of anyone else's is touched, and kill-server ends only it.
const socket = `cli-login-${process.pid}`;

const tmux = (...args: string[]): string => {
  const r = spawnSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' });
  if ((r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') throw new Error('tmux is not installed: apt-get install -y tmux');
  if (r.status !== 0) throw new Error(`tmux ${args[0]}: ${r.stderr}`);
  return r.stdout;
};
const screen = (session: string) => tmux('capture-pane', '-p', '-J', '-t', session, '-S', '-200');
const waitFor = (session: string, what: RegExp) => until(() => what.test(screen(session)), `${what} on screen:\n${screen(session)}`, 30_000);

function startCli(session: string, args: string, env: Record<string, string>): void {
  const vars = Object.entries({ ...env, HOME: mkdtempSync(join(tmpdir(), 'tmux-home-')) }).map(([k, v]) => `${k}='${v}'`).join(' ');
  // The pane stays after the CLI exits so its last lines and exit code can be read.
  tmux('new-session', '-d', '-s', session, '-x', '160', '-y', '60', '-c', root,
    `env ${vars} ${process.execPath} --import tsx clients/typescript/src/cli/main.ts ${args}; echo "EXIT=$?"; sleep 60`);
}

const test = suite<{ d: Daemon; env: Record<string, string> }>('cli login in a terminal', {} as { d: Daemon; env: Record<string, string> });
test.before(async (ctx) => {
  ctx.d = await startDaemon();
  ctx.env = { INTEGRATION_URL: ctx.d.app.url, INTEGRATION_TOKEN: ctx.d.token('tmux-user'), PATH: process.env.PATH ?? '' };
});
test.after(async ({ d }) => {
  spawnSync('tmux', ['-L', socket, 'kill-server']);
  await d.stop();
});

let n = 0;
const newPhone = () => `+4477009${String(process.pid % 100).padStart(2, '0')}${String((Date.now() + n++) % 1000).padStart(3, '0')}`;

test('phone → wrong code, asked again → code → 2FA password (masked) → connected', async ({ d, env }) => {
  const phone = newPhone();
  const password = 'tmux-2fa-secret';
  await d.emu.createUser({ phone, firstName: 'Tmux', username: `tmux${process.pid}`, password });
  startCli('phone', 'login', env);
  await waitFor('phone', /Phone number/);
  tmux('send-keys', '-t', 'phone', phone, 'Enter');
  await waitFor('phone', /Code sent in the Telegram app:/);
  tmux('send-keys', '-t', 'phone', '11111', 'Enter');
  await waitFor('phone', /TG_CODE_INVALID/);
  const code = d.emu.lastCode(phone)!.code;
  tmux('send-keys', '-t', 'phone', code, 'Enter');
  await waitFor('phone', /2FA password/);
  tmux('send-keys', '-t', 'phone', password, 'Enter');
  await waitFor('phone', /EXIT=\d/);
  const text = screen('phone');
  assert.match(text, /✔ connected: Tmux \(@tmux\d+\) — connection [\w-]+, active/);
  assert.match(text, /EXIT=0/);
  assert.not.match(text, password, 'the password is masked on screen');
  assert.match(text, /\*{5,}/);
});

test('--qr draws the QR code in the terminal; accepted on the phone → connected', async ({ d, env }) => {
  const phone = newPhone();
  await d.emu.createUser({ phone, firstName: 'Scanner' });
  startCli('qr', 'login --qr', env);
  await waitFor('qr', /Scan with the Telegram app/);
  const drawn = screen('qr');
  // The terminal QR is drawn with half blocks: rows of ▄ ▀ █ at least 21 modules wide.
  const rows = drawn.split('\n').filter((l) => /[▄▀█]{3}/.test(l));
  assert.ok(rows.length >= 10, `QR rows drawn: ${rows.length}\n${drawn}`);
  const url = /tg:\/\/login\?token=([\w-]+)/.exec(drawn)?.[1];
  assert.ok(url, drawn);
  d.emu.acceptQr(url!, phone);
  await waitFor('qr', /EXIT=\d/);
  assert.match(screen('qr'), /✔ connected: Scanner .*active/);
  assert.match(screen('qr'), /EXIT=0/);
  const client = createClient({ baseUrl: d.app.url, token: env.INTEGRATION_TOKEN! });
  assert.is((await client.connections.all({ status: 'active' })).filter((c) => c.displayName === 'Scanner').length, 1);
});

test.run();
