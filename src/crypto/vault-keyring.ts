// Vault transit adapter for the keyring port, through node-vault's generic read/write (its transit helpers
// are hard-wired to the /transit mount, and its rotate() is Vault's barrier key, not ours).
//
// Context binding: the transit key is created with `derived: true`, so Vault derives a per-context key and a
// ciphertext only decrypts with the context it was made with (our AAD equivalent; ciphertext stays exactly
// Vault's `vault:vN:…`, nothing prefixed). Calls without a context use a fixed default context. A key that
// exists without `derived` (made by hand) is refused at start-up, since it would silently drop that binding.
//
// Auth: a token (VAULT_TOKEN), or AppRole (role_id + secret_id) with re-login at 2/3 of the token's TTL,
// checked before each call with the injected clock (no timers), and once more after a 403.
import http from 'node:http';
import https from 'node:https';
import vault from 'node-vault';
import { AppError } from '../errors.ts';
import { logger } from '../observability/logger.ts';
import { KeyringError, type Keyring } from './port.ts';

export interface VaultKeyringOptions {
  addr: string;
  token?: string | undefined;
  roleId?: string | undefined;
  secretId?: string | undefined;
  namespace?: string | undefined;
  mount?: string | undefined; // default "transit"
  keyName?: string | undefined; // default "integration-service"
  caCert?: string | Buffer | undefined;
  timeoutMs?: number | undefined; // default 5000
  refreshMs?: number | undefined; // latest_version cache lifetime, default 5 minutes
  now?: (() => number) | undefined;
}

interface KeyInfo { type: string; derived: boolean; latest_version: number; auto_rotate_period?: number }

const internals = {
  defaultContext: 'integration-service:default',
  pattern: /^vault:v(\d{1,9}):[A-Za-z0-9+/]+={0,2}$/,
  b64: (s: string) => Buffer.from(s, 'utf8').toString('base64'),
  statusOf: (err: unknown): number | undefined => (err as { response?: { statusCode?: number } })?.response?.statusCode,
  vaultMessage: (err: unknown): string | undefined => {
    const errors = (err as { response?: { body?: { errors?: unknown[] } } })?.response?.body?.errors;
    return Array.isArray(errors) && typeof errors[0] === 'string' ? errors[0] : undefined;
  },
};

export class VaultKeyring implements Keyring {
  private readonly client: vault.client;
  private readonly mount: string;
  private readonly keyName: string;
  private readonly now: () => number;
  private readonly refreshMs: number;
  private readonly agents: { http: http.Agent; https: https.Agent };
  private latest = 0;
  private refreshedAt = 0;
  private renewAt = Number.POSITIVE_INFINITY;
  private loggingIn: Promise<void> | null = null;

  private constructor(private readonly opts: VaultKeyringOptions) {
    this.mount = (opts.mount ?? 'transit').replace(/^\/+|(?<!\/)\/+$/g, '');
    this.keyName = opts.keyName ?? 'integration-service';
    this.now = opts.now ?? Date.now;
    this.refreshMs = opts.refreshMs ?? 5 * 60_000;
    this.agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true, ...(opts.caCert ? { ca: opts.caCert } : {}) }) };
    this.client = vault({
      endpoint: opts.addr,
      ...(opts.namespace ? { namespace: opts.namespace } : {}),
      requestOptions: { timeout: opts.timeoutMs ?? 5000, httpAgent: this.agents.http, httpsAgent: this.agents.https },
    });
    // node-vault falls back to process.env.VAULT_TOKEN; only the token we were given (or logged in for) counts.
    this.client.token = opts.token ?? '';
  }

  static async open(opts: VaultKeyringOptions): Promise<VaultKeyring> {
    if (!(opts.roleId && opts.secretId) && !opts.token) {
      throw new KeyringError('config', 'Vault keyring needs VAULT_TOKEN or VAULT_ROLE_ID + VAULT_SECRET_ID');
    }
    const ring = new VaultKeyring(opts);
    try {
      if (opts.roleId && opts.secretId) await ring.login();
      await ring.ensureKey();
    } catch (err) {
      await ring.close();
      throw err;
    }
    return ring;
  }

  async encrypt(plaintext: string, context?: string): Promise<string> {
    await this.refreshIfStale();
    const res = await this.call('encrypt', () => this.client.write(`${this.mount}/encrypt/${this.keyName}`, {
      plaintext: internals.b64(plaintext), context: this.context(context),
    }));
    return this.accept(res?.data?.ciphertext);
  }

  async decrypt(ciphertext: string, context?: string): Promise<string> {
    this.versionOf(ciphertext);
    const res = await this.call('decrypt', () => this.client.write(`${this.mount}/decrypt/${this.keyName}`, {
      ciphertext, context: this.context(context),
    }));
    const b64 = res?.data?.plaintext;
    if (typeof b64 !== 'string') throw new AppError('DEPENDENCY_UNAVAILABLE', 'vault decrypt returned no plaintext');
    return Buffer.from(b64, 'base64').toString('utf8');
  }

  async rotate(): Promise<number> {
    await this.call('rotate', () => this.client.write(`${this.mount}/keys/${this.keyName}/rotate`, {}));
    await this.refresh();
    return this.latest;
  }

  // Vault rotates the key itself (auto_rotate_period 168h); here we only learn about it.
  async rotateIfDue(): Promise<number | null> {
    const before = this.latest;
    await this.refresh();
    return this.latest > before ? this.latest : null;
  }

  async rewrap(ciphertext: string, context?: string): Promise<string> {
    this.versionOf(ciphertext);
    await this.refreshIfStale();
    const res = await this.call('rewrap', () => this.client.write(`${this.mount}/rewrap/${this.keyName}`, {
      ciphertext, context: this.context(context),
    }));
    return this.accept(res?.data?.ciphertext);
  }

  needsRewrap(ciphertext: string): boolean {
    return this.versionOf(ciphertext) < this.latest;
  }

  async ping(): Promise<void> {
    // node-vault resolves sys/health for every status code (429 standby, 503 sealed, …): read the body.
    const health = await this.call('health check', () => this.client.read('sys/health'));
    if (!health || health.initialized === false || health.sealed !== false) {
      throw new AppError('DEPENDENCY_UNAVAILABLE', `vault is not ready (initialized=${health?.initialized}, sealed=${health?.sealed})`);
    }
  }

  async close(): Promise<void> {
    this.agents.http.destroy();
    this.agents.https.destroy();
  }

  get latestVersion(): number {
    return this.latest;
  }

  private context(context: string | undefined): string {
    return internals.b64(context || internals.defaultContext);
  }

  private versionOf(ciphertext: string): number {
    const m = internals.pattern.exec(ciphertext);
    if (!m) throw new KeyringError('malformed', 'not a Vault transit ciphertext (expected vault:v<N>:<base64>)');
    return Number(m[1]);
  }

  private accept(ciphertext: unknown): string {
    if (typeof ciphertext !== 'string') throw new AppError('DEPENDENCY_UNAVAILABLE', 'vault returned no ciphertext');
    this.latest = Math.max(this.latest, this.versionOf(ciphertext));
    return ciphertext;
  }

  private async ensureKey(): Promise<void> {
    const path = `${this.mount}/keys/${this.keyName}`;
    let info = await this.readKey();
    if (!info) {
      try {
        await this.call('create key', () => this.client.write(path, { type: 'aes256-gcm96', derived: true, auto_rotate_period: '168h' }), [403]);
      } catch (err) {
        if (internals.statusOf(err) !== 403) throw err;
        logger.warn('vault policy forbids creating the transit key; it must exist already', { key: path });
      }
      info = await this.readKey();
      if (!info) throw new AppError('DEPENDENCY_UNAVAILABLE', `vault transit key ${path} does not exist and could not be created`);
    }
    if (info.type !== 'aes256-gcm96' || !info.derived) {
      throw new KeyringError('config', `vault transit key ${path} must be type aes256-gcm96 with derived=true (found ${info.type}, derived=${info.derived})`);
    }
    if (!info.auto_rotate_period) {
      await this.call('configure key', () => this.client.write(`${path}/config`, { auto_rotate_period: '168h' }), [403])
        .catch((err) => {
          if (internals.statusOf(err) !== 403) throw err;
          logger.warn('vault transit key has no auto_rotate_period and this policy may not set it', { key: path });
        });
    }
  }

  private async readKey(): Promise<KeyInfo | null> {
    try {
      const res = await this.call('read key', () => this.client.read(`${this.mount}/keys/${this.keyName}`), [404]);
      const info = res?.data as KeyInfo | undefined;
      if (!info || !Number.isInteger(info.latest_version)) throw new AppError('DEPENDENCY_UNAVAILABLE', 'vault returned an unreadable transit key');
      this.latest = info.latest_version;
      this.refreshedAt = this.now();
      return info;
    } catch (err) {
      if (internals.statusOf(err) === 404) return null;
      throw err;
    }
  }

  private async refresh(): Promise<void> {
    if (!(await this.readKey())) throw new AppError('DEPENDENCY_UNAVAILABLE', `vault transit key ${this.mount}/keys/${this.keyName} is gone`);
  }

  private async refreshIfStale(): Promise<void> {
    if (this.now() - this.refreshedAt >= this.refreshMs) await this.refresh();
  }

  private async login(): Promise<void> {
    this.loggingIn ??= (async () => {
      this.client.token = ''; // an expired token on the login call itself would be refused
      try {
        const res = await this.client.write('auth/approle/login', { role_id: this.opts.roleId, secret_id: this.opts.secretId });
        const auth = res?.auth as { client_token?: string; lease_duration?: number } | undefined;
        if (!auth?.client_token) throw new AppError('DEPENDENCY_UNAVAILABLE', 'vault approle login returned no token');
        this.client.token = auth.client_token;
        const ttlMs = (auth.lease_duration ?? 0) * 1000;
        this.renewAt = ttlMs > 0 ? this.now() + (ttlMs * 2) / 3 : Number.POSITIVE_INFINITY;
      } catch (err) {
        throw this.mapError('approle login', err);
      }
    })().finally(() => { this.loggingIn = null; });
    return this.loggingIn;
  }

  // Runs one Vault call: re-logs in first when the AppRole token is near its TTL, retries once after a 403
  // with a fresh AppRole token (revoked or expired early), maps failures. `passthrough` statuses are
  // rethrown raw for the caller to handle (404 on read, 403 on create).
  private async call<T>(op: string, fn: () => Promise<T>, passthrough: number[] = []): Promise<T> {
    const approle = Boolean(this.opts.roleId && this.opts.secretId);
    if (this.loggingIn) await this.loggingIn.catch(() => undefined); // no call goes out with the token cleared
    if (approle && this.now() >= this.renewAt) await this.login();
    try {
      return await fn();
    } catch (err) {
      const status = internals.statusOf(err);
      if (approle && status === 403 && !passthrough.includes(403)) {
        await this.login();
        try {
          return await fn();
        } catch (again) {
          throw this.mapError(op, again);
        }
      }
      if (status !== undefined && passthrough.includes(status)) throw err;
      throw this.mapError(op, err);
    }
  }

  private mapError(op: string, err: unknown): AppError {
    if (err instanceof AppError) return err;
    const status = internals.statusOf(err);
    const detail = this.redact(internals.vaultMessage(err) ?? (err as { code?: string })?.code ?? 'request failed');
    // 400 on decrypt/rewrap is our data (wrong context, tampered or foreign ciphertext), not an outage.
    if (status === 400 && (op === 'decrypt' || op === 'rewrap')) {
      return new KeyringError('authentication', `vault ${op} refused the ciphertext: ${detail}`);
    }
    return new AppError('DEPENDENCY_UNAVAILABLE', `vault ${op} failed: ${status ? `HTTP ${status} ` : ''}(${detail})`);
  }

  // Vault does not echo credentials, but nothing from a response reaches a message unchecked.
  private redact(text: string): string {
    let out = text.slice(0, 200);
    for (const secret of [this.opts.token, this.opts.secretId, this.opts.roleId, this.client.token]) {
      if (secret) out = out.split(secret).join('[redacted]');
    }
    return out;
  }
}
