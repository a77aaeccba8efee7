import { PlatformControlError } from '../platforms/types.ts';
import { newId } from './graph.ts';

// Instagram professional accounts and Threads profiles: an id (numeric string) and a username.

export interface Account {
  id: string;
  username: string;
  createdAt: number;
  /** Webhook fields the app user enabled with POST /{id}/subscribed_apps (Instagram). */
  subscribedFields: Set<string>;
}

export class Accounts {
  private readonly byId = new Map<string, Account>();
  private readonly byName = new Map<string, Account>();
  private auto = 0;

  create(username: unknown, now: number): Account {
    const name = username === undefined || username === null || username === '' ? `user_${++this.auto}_${Date.now() % 100_000}` : username;
    if (typeof name !== 'string' || !/^[A-Za-z0-9._]{1,30}$/.test(name)) {
      throw new PlatformControlError(400, 'username must be 1-30 letters, digits, dots or underscores');
    }
    if (this.byName.has(name.toLowerCase())) throw new PlatformControlError(409, `username ${name} is taken`);
    const acc: Account = { id: newId(), username: name, createdAt: now, subscribedFields: new Set() };
    this.byId.set(acc.id, acc);
    this.byName.set(name.toLowerCase(), acc);
    return acc;
  }

  get(id: string): Account | undefined {
    return this.byId.get(id);
  }

  /** An account named by id or username, as control calls accept either. */
  resolve(ref: unknown): Account {
    const key = typeof ref === 'number' ? String(ref) : ref;
    if (typeof key !== 'string' || !key) throw new PlatformControlError(400, 'account (id or username) is required');
    const acc = this.byId.get(key) ?? this.byName.get(key.replace(/^@/, '').toLowerCase());
    if (!acc) throw new PlatformControlError(404, `no account ${key}`);
    return acc;
  }

  reset(): void {
    this.byId.clear();
    this.byName.clear();
  }
}
