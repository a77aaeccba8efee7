import { listenOn } from '../http.ts';
import { createServer, type Server } from 'node:net';
import { Api } from 'telegram';
import type { ServerKey } from '../crypto/server-keys.ts';
import type { World } from '../world/world.ts';
import type { WorldEvent } from '../world/types.ts';
import { MtprotoConnection } from './connection.ts';
import { incomingUpdate } from './peers.ts';

// One DC's MTProto TCP listener: accepts connections, knows which connection serves which auth key
// and user (for AUTH_KEY_DUPLICATED and for pushing updates) and turns world events into pushes,
// drops and refusals. Each DC has its own listener and its own auth keys; the world is shared.

export class MtprotoServer {
  /** This DC: its id and where it listens (what help.getConfig calls this_dc). */
  readonly dc: { id: number; host: string; port: number };
  private readonly server: Server;
  private readonly conns = new Set<MtprotoConnection>();
  private readonly byAuthKey = new Map<bigint, Set<MtprotoConnection>>();
  private readonly byUser = new Map<number, Set<MtprotoConnection>>();
  private readonly unsubscribe: () => void;

  private readonly counters: { handshakes: number; connectionsAccepted: number; connections: () => number };

  constructor(readonly world: World, readonly serverKey: ServerKey, readonly dcId: number) {
    this.dc = { id: dcId, host: '127.0.0.1', port: 0 };
    this.counters = world.dcCounters.get(dcId)!;
    this.counters.connections = () => this.conns.size;
    this.server = createServer((socket) => {
      if (world.faults.refuses(undefined, true)) {
        socket.destroy();
        return;
      }
      world.counters.connectionsAccepted++;
      this.counters.connectionsAccepted++;
      this.conns.add(new MtprotoConnection(socket, this));
    });
    this.unsubscribe = world.on((e) => this.onEvent(e));
  }

  async listen(host: string, port: number): Promise<number> {
    // A benchmark opens thousands of connections at once; the default backlog (511) drops some.
    this.dc.port = await listenOn(this.server, host, port, 8192);
    this.dc.host = host;
    this.world.dcAddresses.set(this.dcId, { host, port: this.dc.port });
    return this.dc.port;
  }

  /** A DH exchange finished here: the new key belongs to this DC. */
  newAuthKey(key: Buffer): void {
    this.world.registerAuthKey(key, this.dcId);
    this.world.counters.handshakes++;
    this.counters.handshakes++;
  }

  /** Registers the connection under its auth key; a second live one is flagged duplicate (and counted). */
  attach(conn: MtprotoConnection): void {
    const key = conn.authKey!;
    let set = this.byAuthKey.get(key.id);
    if (!set) this.byAuthKey.set(key.id, (set = new Set()));
    if ([...set].some((c) => !c.duplicate)) {
      conn.duplicate = true;
      this.world.counters.duplicateAuthKeyUse++;
    }
    set.add(conn);
    this.index(conn);
  }

  detach(conn: MtprotoConnection): void {
    this.conns.delete(conn);
    if (conn.authKey) {
      const set = this.byAuthKey.get(conn.authKey.id);
      set?.delete(conn);
      if (set?.size === 0) this.byAuthKey.delete(conn.authKey.id);
    }
    this.unindex(conn);
  }

  /** Keeps the user → connections index current; called after every packet since a login can change the key's user. */
  index(conn: MtprotoConnection): void {
    const userId = conn.authKey?.userId;
    if (conn.indexedUser === userId) return;
    this.unindex(conn);
    if (userId === undefined) return;
    let set = this.byUser.get(userId);
    if (!set) this.byUser.set(userId, (set = new Set()));
    set.add(conn);
    conn.indexedUser = userId;
  }

  private unindex(conn: MtprotoConnection): void {
    if (conn.indexedUser === undefined) return;
    const set = this.byUser.get(conn.indexedUser);
    set?.delete(conn);
    if (set?.size === 0) this.byUser.delete(conn.indexedUser);
    conn.indexedUser = undefined;
  }

  private userConns(userId: number): MtprotoConnection[] {
    return [...(this.byUser.get(userId) ?? [])].filter((c) => c.authKey?.userId === userId && !c.authKey.revoked);
  }

  private onEvent(e: WorldEvent): void {
    switch (e.type) {
      case 'message':
        for (const id of e.recipients) {
          if (!this.byUser.has(id)) continue; // not connected: most recipients in a benchmark
          const user = this.world.accounts.get(id);
          // Updates flow on the account's home DC only (a key imported elsewhere is for files).
          if (user?.kind !== 'user' || user.dc !== this.dcId) continue;
          const conns = this.userConns(id);
          if (conns.length === 0) continue;
          const body = incomingUpdate(this.world, e.message, user).getBytes();
          for (const c of conns) c.push(body);
        }
        return;
      case 'login-token': {
        const body = new Api.UpdateShort({ update: new Api.UpdateLoginToken(), date: Math.floor(Date.now() / 1000) }).getBytes();
        for (const c of this.byAuthKey.get(e.authKeyId) ?? []) c.push(body);
        return;
      }
      case 'drop':
        for (const c of e.accountId === undefined ? [...this.conns] : this.userConns(e.accountId)) c.close();
        return;
      case 'revoked':
        return; // the next RPC on a revoked key answers AUTH_KEY_UNREGISTERED
    }
  }

  async close(): Promise<void> {
    this.unsubscribe();
    for (const c of [...this.conns]) c.close();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
