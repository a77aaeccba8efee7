import { createHash, randomBytes } from 'node:crypto';
import type postgres from 'postgres';
import type winston from 'winston';
import { secretContext, type Keyring } from '../crypto/keyring.ts';
import { AppError, isAppError } from '../errors.ts';
import type { OAuthLogin } from '../platforms/adapter.ts';
import type { Platforms } from '../platforms/registry.ts';
import { getConnection, putSecret } from '../store/connections.ts';
import { consumeOAuthState, insertOAuthState, retireOAuthStates } from '../store/oauth-states.ts';
import { transaction } from '../store/transaction.ts';
import { secretVault } from '../supervisor/secrets.ts';
import type { Supervisor } from '../supervisor/supervisor.ts';
import { SECRET, storeTokens } from './tokens.ts';

// The core's half of an OAuth login (API.md "OAuth platforms"): a state per authorize URL (32 random
// bytes, stored hashed, single use, 10 minutes), a PKCE pair where the platform takes it (RFC 7636,
// S256; the verifier stored as an encrypted connection secret), the callback that exchanges the code
// and stores the tokens, and reauthorize. The platform's part is OAuthLogin (src/platforms/adapter.ts).

export const STATE_TTL_MS = 10 * 60 * 1000;

const sha256 = (s: string) => createHash('sha256').update(s).digest('base64url');
const stateInvalid = () => new AppError('OAUTH_STATE_INVALID', 'The authorization state is unknown, used or expired: start again from the connection\'s authorizeUrl');

export interface OAuthGrant { state: string; stateHash: string; verifier?: string; authorizeUrl: string }

export const callbackUrl = (publicUrl: string, platform: string) => `${publicUrl}/v1/oauth/${platform}/callback`;

/** A fresh state (and PKCE pair) and the authorize URL that carries them. Nothing stored yet. */
export function newGrant(login: OAuthLogin, platform: string, publicUrl: string): OAuthGrant {
  const state = randomBytes(32).toString('base64url');
  const verifier = login.pkce ? randomBytes(48).toString('base64url') : undefined; // 64 chars (RFC 7636: 43–128)
  const authorizeUrl = login.authorizeUrl({
    state, redirectUri: callbackUrl(publicUrl, platform),
    ...(verifier ? { codeChallenge: sha256(verifier) } : {}),
  });
  return { state, stateHash: sha256(state), ...(verifier ? { verifier } : {}), authorizeUrl };
}

/** The PKCE verifier encrypted for the connection (before its transaction: the keyring may be Vault). */
export async function sealVerifier(keyring: Keyring, g: OAuthGrant, connectionId: string): Promise<string | undefined> {
  return g.verifier ? keyring.encrypt(g.verifier, secretContext(connectionId, SECRET.verifier)) : undefined;
}

/** Stores a grant for a connection (in the caller's transaction): its state row and its sealed PKCE verifier. */
export async function recordGrant(
  tx: postgres.Sql | postgres.TransactionSql, sealedVerifier: string | undefined,
  g: OAuthGrant, p: { connectionId: string; platform: string; returnTo?: string; now: number },
): Promise<void> {
  await retireOAuthStates(tx, p.connectionId);
  await insertOAuthState(tx, {
    stateHash: g.stateHash, connectionId: p.connectionId, platform: p.platform, expiresAt: new Date(p.now + STATE_TTL_MS),
    ...(p.returnTo ? { returnTo: p.returnTo } : {}),
  });
  if (sealedVerifier) await putSecret(tx, p.connectionId, SECRET.verifier, sealedVerifier);
}

export interface OAuthFlowOptions {
  sql: postgres.Sql;
  keyring: Keyring;
  platforms: Platforms;
  supervisor: Supervisor;
  logger: winston.Logger;
  publicUrl: string;
}

/** The login of a platform's OAuth kind, or undefined (a platform without one). */
export function oauthKindOf(platforms: Platforms, platform: string): { kind: string; login: OAuthLogin } | undefined {
  const k = platforms.get(platform).kinds.find((x) => x.oauth);
  return k?.oauth ? { kind: k.kind, login: k.oauth } : undefined;
}

/**
 * GET /v1/oauth/{platform}/callback: consumes the state (else OAUTH_STATE_INVALID, nothing changed),
 * exchanges the code and stores the tokens, then lets the connection's actor connect with them.
 * Answers where to redirect the browser.
 */
export async function completeAuthorization(o: OAuthFlowOptions, platform: string, q: { code?: string; state?: string; error?: string }): Promise<string> {
  const oauth = oauthKindOf(o.platforms, platform);
  if (!oauth) throw new AppError('NOT_FOUND', `${platform} has no OAuth login`);
  if (!q.state) throw stateInvalid();
  const found = await consumeOAuthState(o.sql, sha256(q.state), platform);
  if (!found) throw stateInvalid();
  const back = (params: Record<string, string>) => {
    const u = new URL(found.returnTo ?? `${o.publicUrl}/`);
    u.searchParams.set('connection', found.connectionId);
    for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
    return u.toString();
  };
  const row = await getConnection(o.sql, found.owner, found.connectionId);
  if (!row) throw stateInvalid();
  const rt = o.supervisor.live(found.owner, found.connectionId);
  if (q.error || !q.code) {
    rt?.actor.send({ type: 'DENIED' });
    if (rt) await o.supervisor.settle(rt, false);
    return back({ status: 'error', code: 'PLATFORM_AUTH_DENIED' });
  }
  const vault = secretVault(o.sql, o.keyring, found.connectionId);
  const verifier = (await vault.load())[SECRET.verifier];
  try {
    const tokens = await oauth.login.exchange({ code: q.code, redirectUri: callbackUrl(o.publicUrl, platform), ...(verifier ? { codeVerifier: verifier } : {}) });
    await storeTokens(vault, tokens, Date.now());
  } catch (err) {
    const code = isAppError(err) ? err.code : 'PLATFORM_UNAVAILABLE';
    o.logger.warn('oauth code exchange failed', { connectionId: found.connectionId, platform, code });
    return back({ status: 'error', code });
  }
  await vault.remove(SECRET.verifier);
  if (rt) {
    o.supervisor.reconnect(rt, 'authorized');
    await o.supervisor.settle(rt, true);
  }
  return back({ status: rt?.status ?? 'connecting' });
}

/** POST /v1/connections/{id}/reauthorize: a new authorize URL; the connection waits for it. */
export async function reauthorize(o: OAuthFlowOptions, owner: string, id: string, returnTo?: string): Promise<void> {
  const row = await getConnection(o.sql, owner, id);
  if (!row) throw new AppError('NOT_FOUND', 'No such connection');
  const oauth = oauthKindOf(o.platforms, row.platform);
  if (!oauth) throw new AppError('INVALID_STATE', `${row.platform} connections do not authorize with OAuth`);
  const rt = o.supervisor.live(owner, id);
  if (!rt || !rt.actor.getSnapshot().can({ type: 'AUTHORIZE', url: '' })) throw new AppError('INVALID_STATE', `The connection is ${rt?.status ?? row.status}, not error or awaiting-authorization`);
  const g = newGrant(oauth.login, row.platform, o.publicUrl);
  const sealed = await sealVerifier(o.keyring, g, id);
  await transaction(o.sql, (tx) => recordGrant(tx, sealed, g, { connectionId: id, platform: row.platform, now: Date.now(), ...(returnTo ? { returnTo } : {}) }));
  rt.actor.send({ type: 'AUTHORIZE', url: g.authorizeUrl });
}
