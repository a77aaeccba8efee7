// `npm run demo`: the Telegram test DC and the daemon wired together in one command, with a demo
// phone user (2FA on), a demo bot and a channel where both are admins. Prints how to connect them
// with the CLI (or curl). Each run starts fresh: the emulator's accounts are new every time, so
// connections kept from a previous run would point at nothing; its data lives in $DATA_DIR/demo.
import { rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startApp } from '../../src/app.ts';
import { mintToken } from '../../src/auth/token.ts';
import { loadConfig } from '../../src/config.ts';
import { logFormatFor, logger } from '../../src/observability/logger.ts';
import { startEmulator } from '../emulator/index.ts';

const phone = '+12015550123'; // a valid US number format: the API checks numbers with libphonenumber's full metadata
const password = 'demo-2fa-password';
const dataDir = join(resolve(process.env.DATA_DIR ?? './data'), 'demo');
rmSync(dataDir, { recursive: true, force: true });

const emu = await startEmulator();
const { userId } = await emu.createUser({ phone, firstName: 'Demo', username: 'demo_user', password });
const bot = emu.createBot({ username: 'demo_bot' });
const { chatId } = emu.createChat({
  type: 'channel', title: 'Demo channel', username: 'demo_channel',
  members: [{ id: userId, role: 'creator' }, { id: bot.botId, role: 'admin', rights: { postMessages: true } }],
});

const config = loadConfig({
  ...process.env,
  TELEGRAM_DC: emu.mtproto,
  TELEGRAM_SERVER_KEYS: emu.serverKeys,
  TELEGRAM_BOT_API_URL: emu.botApi,
  TELEGRAM_API_ID: process.env.TELEGRAM_API_ID ?? '1',
  TELEGRAM_API_HASH: process.env.TELEGRAM_API_HASH ?? 'demo',
  DATA_DIR: dataDir,
});
logger.format = logFormatFor(config.logFormat, process.stdout.isTTY === true);
const app = await startApp(config);
const token = mintToken({ secret: config.jwt.secret!, sub: 'demo', scopes: ['admin'], ttlSeconds: 86_400 });
const api = `curl -s -H "authorization: Bearer $INTEGRATION_TOKEN" -H 'content-type: application/json'`;

process.stdout.write(`
  Demo: daemon ${app.url}  ·  emulator control ${emu.control}  ·  data ${dataDir} (fresh each run)

  Console: ${app.url}/#token=${token}

  In another terminal:
  export INTEGRATION_URL=${app.url}
  export INTEGRATION_TOKEN=${token}

  1. Connect the demo account (phone ${phone}, 2FA password "${password}") with the CLI; it asks for the code:
     npm run cli -- login --phone ${phone}
     curl -s ${emu.control}/users/${encodeURIComponent(phone)}/code          # the code Telegram "sent"

  2. Or log in by QR: npm run cli -- login --qr   (draws the QR), then accept it as the phone:
     curl -s -XPOST ${emu.control}/qr/accept -H 'content-type: application/json' -d '{"token":"<token from the QR url>","phone":"${phone}"}'

  3. Connect the demo bot, add the channel (id ${chatId}), send and wait until it is sent:
     npm run cli -- login --bot ${bot.token}
     npm run cli -- chats add <id> @demo_channel
     npm run cli -- send --wait <id> @demo_channel "hello"
     npm run cli -- events tail                                            # live events
     curl -s '${emu.control}/messages?chatId=${chatId}'                      # what Telegram delivered

  The same with curl: ${api} -d '{"platform":"telegram","kind":"bot","token":"${bot.token}"}' ${app.url}/v1/connections

`);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await app.stop();
  await emu.stop();
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
