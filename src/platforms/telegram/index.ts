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
  // Account connects in flight at once (default 16). A connect costs the daemon ~2.5 ms of CPU in
  // GramJS (bench:accounts), and every one whose answer arrives in the same poll phase runs before
  // the loop turns: 200 in flight held the loop ~400 ms at a time (p99 0.4 s during a restart of
  // 1,000); 16 keep a turn near 20–30 ms and still keep the CPU busy, as the DC answers in ~1 ms.
  maxConcurrentConnects?: number;
}

export function telegramPlatform(opts: TelegramPlatformOptions): Platform {
  const connects = bulkhead(opts.maxConcurrentConnects ?? 16, Number.MAX_SAFE_INTEGER);
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
