import { bulkhead } from 'cockatiel';
import type { Driver, DriverContext } from '../../supervisor/driver.ts';
import { accountDriver, type AccountDriverOptions } from './account-driver.ts';
import { BotApi } from './bot-api.ts';
import { botDriver, type BotDriverOptions } from './bot-driver.ts';

// The Telegram platform as the supervisor sees it: drivers per connection and a token check.
// Nothing outside this folder knows GramJS or the Bot API.

export interface Platform {
  accountDriver(ctx: DriverContext): Driver;
  botDriver(ctx: DriverContext): Driver;
  /** getMe with a token that is not stored yet; TG_BOT_TOKEN_INVALID when Telegram refuses it. */
  verifyBotToken(token: string): Promise<{ platformUserId: string; displayName: string; username?: string }>;
}

export interface TelegramPlatformOptions {
  account: Omit<AccountDriverOptions, 'connectSlot'>;
  bot: BotDriverOptions;
  // 200 concurrent connects: a restart of 10,000 accounts reconnects in waves instead of opening
  // 10,000 sockets and DH/TLS work in the same tick.
  maxConcurrentConnects?: number;
}

export function telegramPlatform(opts: TelegramPlatformOptions): Platform {
  const connects = bulkhead(opts.maxConcurrentConnects ?? 200, Number.MAX_SAFE_INTEGER);
  const connectSlot = <T>(fn: () => Promise<T>) => connects.execute(fn);
  return {
    accountDriver: (ctx) => accountDriver(ctx, { ...opts.account, connectSlot }),
    botDriver: (ctx) => botDriver(ctx, opts.bot),
    async verifyBotToken(token) {
      const me = await new BotApi({ baseUrl: opts.bot.botApiUrl, token, ...(opts.bot.timeoutMs ? { timeoutMs: opts.bot.timeoutMs } : {}) }).getMe();
      return { platformUserId: String(me.id), displayName: me.first_name, ...(me.username ? { username: me.username } : {}) };
    },
  };
}
