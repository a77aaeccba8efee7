import type { Command } from 'commander';
import type { Connection } from '../client.ts';
import { connectBot, loginWithPhone, loginWithQr } from '../login.ts';
import type { Context } from './context.ts';

// Prompts go to stderr: with --json, stdout carries only the resulting connection.
const promptContext = { output: process.stderr };

const done = (c: Context, conn: Connection) =>
  c.out.result(conn, () => `✔ connected: ${conn.displayName ?? ''}${conn.username ? ` (@${conn.username})` : ''} — connection ${conn.id}, ${conn.status}`);

const where: Record<string, string> = { app: 'in the Telegram app', sms: 'by SMS', call: 'by a phone call', 'flash-call': 'by a flash call', 'missed-call': 'by a missed call', email: 'by e-mail', fragment: 'on Fragment' };

export function loginCommand(program: Command, ctx: () => Context): void {
  program.command('login').description('connect a Telegram account (phone → code → 2FA, or a QR drawn here) or a bot')
    .option('--phone <number>', 'international format, e.g. +447700900123')
    .option('--qr', 'log in by scanning a QR code with the Telegram app')
    .option('--bot <token>', 'connect a bot by its token instead (from @BotFather)')
    .option('--updates <mode>', 'with --bot: poll | none (none: send only, beside your own bot backend)')
    .action(async (o: { phone?: string; qr?: boolean; bot?: string; updates?: 'poll' | 'none' }) => {
      const c = ctx();
      const client = c.client();
      if (o.bot) return done(c, await connectBot(client, { token: o.bot, ...(o.updates && { updates: o.updates }) }));
      const { input, password } = await import('@inquirer/prompts');
      const askPassword = async (hint: string | undefined) =>
        password({ message: `2FA password${hint ? ` (hint: ${hint})` : ''}:`, mask: '*' }, promptContext);
      const onRetry = (err: { code: string; message: string }) => process.stderr.write(`✗ ${err.code}: ${err.message}; try again\n`);
      const onStatus = (conn: Connection) => c.out.note(`… ${conn.status}`);
      let phone = o.phone;
      if (!phone && !o.qr) {
        phone = (await input({ message: 'Phone number (international format), or empty to log in by QR code:' }, promptContext)).trim();
      }
      if (phone) {
        return done(c, await loginWithPhone(client, {
          phone, onRetry, onStatus, password: askPassword,
          code: (conn) => input({ message: `Code sent ${where[conn.login?.codeType ?? 'app'] ?? ''}:`.replace(' :', ':'), validate: (v) => /^\s*\d{4,8}\s*$/.test(v) || 'the code is digits' }, promptContext).then((v) => v.trim()),
        }));
      }
      const QRCode = await import('qrcode');
      done(c, await loginWithQr(client, {
        onRetry, onStatus, password: askPassword,
        onQr: (qr) => {
          void QRCode.toString(qr.url, { type: 'terminal', small: true }).then((drawing) => {
            process.stderr.write(`\nScan with the Telegram app (Settings → Devices → Link Desktop Device), valid until ${qr.expiresAt}:\n${drawing}\n${qr.url}\n`);
          });
        },
      }));
    });
}
