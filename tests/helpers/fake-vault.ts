// FAKE Vault for tests — not Vault, not a mock of our code. A loopback HTTP server that follows the documented
// HTTP API of the parts we use (https://developer.hashicorp.com/vault/api-docs): sys/health, auth/approle/login,
// transit keys (create / read / rotate / config / delete), transit encrypt / decrypt / rewrap, KV v2 reads
// (GET secret/data/<path>, secrets put with putSecret). Tokens are
// checked (X-Vault-Token; unknown, revoked or expired → 403 "permission denied"), ciphertexts are Vault's
// `vault:vN:base64(nonce‖ciphertext‖tag)` with real AES-256-GCM underneath, and derived keys use a per-context
// key (HKDF here; Vault's own derivation differs, which no client can observe). Policies are reduced to one
// switch per token: whether it may create transit keys. Neither Vault nor OpenBao can run on this machine;
// the adapter also has a test against a real Vault when VAULT_ADDR is set.
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

interface TokenEntry { canCreateKeys: boolean; expiresAt: number }
interface TransitKey {
  type: string;
  derived: boolean;
  autoRotateSeconds: number;
  minDecryptionVersion: number;
  deletionAllowed: boolean;
  versions: Map<number, { key: Buffer; created: number }>;
}

export interface FakeVaultOptions {
  rootToken?: string;
  mount?: string; // transit mount, default "transit"
  now?: () => number; // clock for token expiry and key timestamps
}

export interface FakeVault {
  url: string;
  rootToken: string;
  keys: Map<string, TransitKey>;
  requests: { method: string; path: string }[];
  logins: number;
  addToken(token: string, opts?: { canCreateKeys?: boolean; ttlSeconds?: number }): void;
  addAppRole(roleId: string, secretId: string, opts?: { ttlSeconds?: number; canCreateKeys?: boolean }): void;
  revokeToken(token: string): void;
  /** A KV v2 secret at `secret/data/<path>` (the version counts up per put). */
  putSecret(path: string, data: Record<string, string>): void;
  createKey(name: string, opts?: { type?: string; derived?: boolean; autoRotateSeconds?: number }): void;
  close(): Promise<void>;
}

class VaultHttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

const parseDuration = (value: unknown): number => {
  if (typeof value === 'number') return value;
  const m = /^(\d+)([smh]?)$/.exec(String(value));
  if (!m) throw new VaultHttpError(400, `invalid duration ${String(value)}`);
  return Number(m[1]) * ({ '': 1, s: 1, m: 60, h: 3600 } as Record<string, number>)[m[2]!]!;
};

export async function startFakeVault(opts: FakeVaultOptions = {}): Promise<FakeVault> {
  const now = opts.now ?? Date.now;
  const mount = opts.mount ?? 'transit';
  const rootToken = opts.rootToken ?? `hvs.root-${randomBytes(8).toString('hex')}`;
  const tokens = new Map<string, TokenEntry>([[rootToken, { canCreateKeys: true, expiresAt: Infinity }]]);
  const roles = new Map<string, { secretId: string; ttlSeconds: number; canCreateKeys: boolean }>();
  const keys = new Map<string, TransitKey>();
  const kv = new Map<string, { data: Record<string, string>; version: number }>();
  const requests: { method: string; path: string }[] = [];
  let logins = 0;

  const newKey = (type = 'aes256-gcm96', derived = false, autoRotateSeconds = 0): TransitKey => ({
    type, derived, autoRotateSeconds, minDecryptionVersion: 1, deletionAllowed: false,
    versions: new Map([[1, { key: randomBytes(32), created: now() }]]),
  });
  const latest = (k: TransitKey) => Math.max(...k.versions.keys());
  const keyInfo = (name: string, k: TransitKey) => ({
    name, type: k.type, derived: k.derived, latest_version: latest(k), min_decryption_version: k.minDecryptionVersion,
    min_encryption_version: 0, auto_rotate_period: k.autoRotateSeconds, deletion_allowed: k.deletionAllowed,
    keys: Object.fromEntries([...k.versions].map(([v, e]) => [String(v), Math.floor(e.created / 1000)])),
  });
  const dataKey = (k: TransitKey, version: number, context: unknown): Buffer => {
    const entry = k.versions.get(version);
    if (!entry) throw new VaultHttpError(400, 'invalid key version');
    if (!k.derived) return entry.key;
    if (typeof context !== 'string' || context === '') {
      throw new VaultHttpError(400, "missing 'context' for key derivation; the key was created using a derived key, which means additional, per-request information must be included in order to perform operations with the key");
    }
    return Buffer.from(hkdfSync('sha256', entry.key, Buffer.alloc(0), Buffer.from(context, 'base64'), 32));
  };
  const seal = (k: TransitKey, plaintextB64: unknown, context: unknown) => {
    if (typeof plaintextB64 !== 'string') throw new VaultHttpError(400, 'missing plaintext to encrypt');
    const version = latest(k);
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', dataKey(k, version, context), nonce);
    const body = Buffer.concat([nonce, cipher.update(Buffer.from(plaintextB64, 'base64')), cipher.final(), cipher.getAuthTag()]);
    return { ciphertext: `vault:v${version}:${body.toString('base64')}`, key_version: version };
  };
  const open = (k: TransitKey, ciphertext: unknown, context: unknown): Buffer => {
    const m = /^vault:v(\d+):(.+)$/.exec(String(ciphertext));
    if (!m) throw new VaultHttpError(400, 'invalid ciphertext: no prefix');
    const version = Number(m[1]);
    if (version < k.minDecryptionVersion) throw new VaultHttpError(400, 'ciphertext or signature version is disallowed by policy (too old)');
    const key = dataKey(k, version, context);
    const raw = Buffer.from(m[2]!, 'base64');
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
      decipher.setAuthTag(raw.subarray(raw.length - 16));
      return Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]);
    } catch {
      throw new VaultHttpError(400, 'cipher: message authentication failed');
    }
  };

  const route = (method: string, path: string, token: TokenEntry | undefined, body: Record<string, unknown>): unknown => {
    if (path === 'sys/health' && method === 'GET') {
      return { initialized: true, sealed: false, standby: false, version: '0.0.0-fake', cluster_name: 'fake-vault' };
    }
    if (path === 'auth/approle/login' && method === 'POST') {
      const role = roles.get(String(body.role_id));
      if (!role || role.secretId !== body.secret_id) throw new VaultHttpError(400, 'invalid role or secret ID');
      const clientToken = `hvs.${randomBytes(12).toString('hex')}`;
      tokens.set(clientToken, { canCreateKeys: role.canCreateKeys, expiresAt: now() + role.ttlSeconds * 1000 });
      logins += 1;
      return { auth: { client_token: clientToken, accessor: randomUUID(), policies: ['default'], lease_duration: role.ttlSeconds, renewable: true } };
    }
    if (!token) throw new VaultHttpError(403, 'permission denied');
    if (path.startsWith('secret/data/') && method === 'GET') {
      const entry = kv.get(path.slice('secret/data/'.length));
      if (!entry) throw new VaultHttpError(404, '');
      return { data: { data: entry.data, metadata: { version: entry.version, created_time: new Date(now()).toISOString(), deletion_time: '', destroyed: false } } };
    }
    const parts = path.split('/');
    if (parts[0] !== mount) throw new VaultHttpError(404, `no handler for route "${path}". route entry not found.`);
    const [, section, name, action] = parts;
    const key = name ? keys.get(name) : undefined;
    if (section === 'keys' && name && !action) {
      if (method === 'GET') {
        if (!key) throw new VaultHttpError(404, '');
        return { data: keyInfo(name, key) };
      }
      if (method === 'POST') {
        if (!token.canCreateKeys) throw new VaultHttpError(403, 'permission denied');
        if (!key) keys.set(name, newKey(String(body.type ?? 'aes256-gcm96'), body.derived === true, body.auto_rotate_period === undefined ? 0 : parseDuration(body.auto_rotate_period)));
        return { data: keyInfo(name, keys.get(name)!) };
      }
      if (method === 'DELETE') {
        if (!key) return null;
        if (!key.deletionAllowed) throw new VaultHttpError(400, 'deletion is not allowed for this key');
        keys.delete(name);
        return null;
      }
    }
    if (!key) throw new VaultHttpError(400, 'encryption key not found');
    if (section === 'keys' && action === 'rotate' && method === 'POST') {
      key.versions.set(latest(key) + 1, { key: randomBytes(32), created: now() });
      return { data: keyInfo(name!, key) };
    }
    if (section === 'keys' && action === 'config' && method === 'POST') {
      if (body.min_decryption_version !== undefined) key.minDecryptionVersion = Number(body.min_decryption_version);
      if (body.auto_rotate_period !== undefined) key.autoRotateSeconds = parseDuration(body.auto_rotate_period);
      if (body.deletion_allowed !== undefined) key.deletionAllowed = body.deletion_allowed === true;
      return { data: keyInfo(name!, key) };
    }
    if (method === 'POST' && section === 'encrypt') return { data: seal(key, body.plaintext, body.context) };
    if (method === 'POST' && section === 'decrypt') return { data: { plaintext: open(key, body.ciphertext, body.context).toString('base64') } };
    if (method === 'POST' && section === 'rewrap') {
      const plain = open(key, body.ciphertext, body.context);
      return { data: seal(key, plain.toString('base64'), body.context) };
    }
    throw new VaultHttpError(405, 'unsupported operation');
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const path = new URL(req.url ?? '/', 'http://fake').pathname.replace(/^\/v1\//, '');
    requests.push({ method: req.method ?? 'GET', path });
    const send = (status: number, payload: unknown) => {
      if (payload === null) {
        res.writeHead(204).end();
        return;
      }
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(payload));
    };
    try {
      const body = chunks.length ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>) : {};
      const header = req.headers['x-vault-token'];
      const entry = typeof header === 'string' ? tokens.get(header) : undefined;
      const token = entry && entry.expiresAt > now() ? entry : undefined;
      const result = route(req.method ?? 'GET', path, token, body);
      send(200, result === null ? null : { request_id: randomUUID(), lease_id: '', renewable: false, lease_duration: 0, wrap_info: null, warnings: null, auth: null, ...(result as object) });
    } catch (err) {
      if (err instanceof VaultHttpError) send(err.status, { errors: err.message ? [err.message] : [] });
      else send(500, { errors: ['1 error occurred: internal error'] });
    }
  };

  const server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    rootToken,
    keys,
    requests,
    get logins() {
      return logins;
    },
    addToken(token, o = {}) {
      tokens.set(token, { canCreateKeys: o.canCreateKeys ?? true, expiresAt: o.ttlSeconds ? now() + o.ttlSeconds * 1000 : Infinity });
    },
    addAppRole(roleId, secretId, o = {}) {
      roles.set(roleId, { secretId, ttlSeconds: o.ttlSeconds ?? 3600, canCreateKeys: o.canCreateKeys ?? true });
    },
    revokeToken(token) {
      tokens.delete(token);
    },
    putSecret(path, data) {
      kv.set(path, { data, version: (kv.get(path)?.version ?? 0) + 1 });
    },
    createKey(name, o = {}) {
      keys.set(name, newKey(o.type, o.derived ?? false, o.autoRotateSeconds ?? 0));
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
