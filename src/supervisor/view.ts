import type { ConnectionRow, Connection, Status } from '../store/connections.ts';

// How a live actor reads through the API: the row's fixed fields plus what the machine knows now.

export interface MachineContext {
  login?: string;
  error?: { code: string; message: string; retryAt?: number } | null;
  codeType?: string | null;
  codeInfo?: { nextType?: string; length?: number; resendAfter?: number } | null;
  qr?: { url: string; expiresAt: number } | null;
  authorizeUrl?: string | null;
  passwordHint?: string | null;
  profile?: { platformUserId: string; displayName: string; username?: string } | null;
  lastActiveAt?: number | null;
  retryAt?: number | null;
}

const iso = (ms: number) => new Date(ms).toISOString();
const loggingIn = new Set<Status>(['connecting', 'awaiting-code', 'awaiting-qr', 'awaiting-2fa', 'awaiting-authorization']);

export function loginOf(status: Status, ctx: MachineContext): Record<string, unknown> | null {
  if (!ctx.login || ctx.login === 'session' || !loggingIn.has(status)) return null;
  return {
    method: ctx.login,
    ...(ctx.codeType ? { codeType: ctx.codeType } : {}),
    ...(ctx.codeType && ctx.codeInfo?.nextType ? { nextCodeType: ctx.codeInfo.nextType } : {}),
    ...(ctx.codeType && ctx.codeInfo?.length ? { codeLength: ctx.codeInfo.length } : {}),
    ...(ctx.codeType && ctx.codeInfo?.resendAfter ? { resendAfter: iso(ctx.codeInfo.resendAfter) } : {}),
    ...(status === 'awaiting-qr' && ctx.qr ? { qr: { url: ctx.qr.url, expiresAt: iso(ctx.qr.expiresAt) } } : {}),
    ...(ctx.passwordHint ? { passwordHint: ctx.passwordHint } : {}),
    ...(status === 'awaiting-authorization' && ctx.authorizeUrl ? { authorizeUrl: ctx.authorizeUrl } : {}),
  };
}

export function errorOf(ctx: MachineContext): { code: string; message: string; retryAt?: string } | null {
  if (!ctx.error) return null;
  const retryAt = ctx.error.retryAt ?? ctx.retryAt ?? undefined;
  return { code: ctx.error.code, message: ctx.error.message, ...(retryAt ? { retryAt: iso(retryAt) } : {}) };
}

export function liveView(row: ConnectionRow, status: Status, statusSince: number, ctx: MachineContext, updatedAt: number): Connection {
  const profile = ctx.profile ?? undefined;
  const login = loginOf(status, ctx);
  const error = errorOf(ctx);
  const lastActive = ctx.lastActiveAt ?? row.last_active_at?.getTime();
  return {
    id: row.id,
    platform: row.platform,
    kind: row.kind,
    status,
    statusSince: iso(statusSince),
    displayName: profile?.displayName ?? row.display_name,
    ...((profile?.username ?? row.username) ? { username: (profile?.username ?? row.username)! } : {}),
    ...((profile?.platformUserId ?? row.platform_user_id) ? { platformUserId: (profile?.platformUserId ?? row.platform_user_id)! } : {}),
    ...(row.phone_masked ? { phone: row.phone_masked } : {}),
    ...(login ? { login } : {}),
    ...(error ? { error } : {}),
    createdAt: row.created_at.toISOString(),
    updatedAt: iso(updatedAt),
    ...(lastActive ? { lastActiveAt: iso(lastActive) } : {}),
  };
}
