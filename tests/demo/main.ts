// `npm run demo`: the Telegram test DC and the daemon wired together in one command, with a demo
// phone user (2FA on), a demo bot and a channel where both are admins. Prints how to connect them.
import { startApp } from '../../src/app.ts';
import { mintToken } from '../../src/auth/token.ts';
import { loadConfig } from '../../src/config.ts';
import { startEmulator } from '../emulator/index.ts';

const phone = '+12015550123'; // a valid US number format: the API checks numbers with libphonenumber's full metadata
const password = 'demo-2fa-password';

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
  DATA_DIR: process.env.DATA_DIR ?? './data/demo',
});
const app = await startApp(config);
const token = mintToken({ secret: config.jwt.secret!, sub: 'demo', scopes: ['admin'], ttlSeconds: 86_400 });
const api = `curl -s -H "authorization: Bearer $TOKEN" -H 'content-type: application/json'`;

process.stdout.write(`
  Demo: daemon ${app.url}  ·  emulator control ${emu.control}

  Console: ${app.url}/#token=${token}

  export TOKEN=${token}

  1. Connect the demo account (phone ${phone}, 2FA password "${password}"):
     ${api} -d '{"platform":"telegram","kind":"user","phone":"${phone}"}' ${app.url}/v1/connections
     curl -s ${emu.control}/users/${encodeURIComponent(phone)}/code          # the code Telegram "sent"
     ${api} -d '{"code":"<code>"}' ${app.url}/v1/connections/<id>/code
     ${api} -d '{"password":"${password}"}' ${app.url}/v1/connections/<id>/password

  2. Or log in by QR: POST {"platform":"telegram","kind":"user","method":"qr"}, then accept it as the phone:
     curl -s -XPOST ${emu.control}/qr/accept -H 'content-type: application/json' -d '{"token":"<token from login.qr.url>","phone":"${phone}"}'

  3. Connect the demo bot:
     ${api} -d '{"platform":"telegram","kind":"bot","token":"${bot.token}"}' ${app.url}/v1/connections

  4. Add the channel (id ${chatId}) and send:
     ${api} -d '{"chat":"@demo_channel"}' ${app.url}/v1/connections/<id>/chats
     ${api} -d '{"connectionId":"<id>","chat":"@demo_channel","text":"hello"}' ${app.url}/v1/messages
     curl -s '${emu.control}/messages?chatId=${chatId}'                      # what Telegram delivered

`);

const stop = async () => {
  await app.stop();
  await emu.stop();
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
