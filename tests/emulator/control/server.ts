import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { TgError } from '../world/types.ts';
import { BodyError, readParams, sendJson, listenOn } from '../http.ts';
import type { Emulator } from '../index.ts';
import { PlatformControlError, type PlatformName } from '../platforms/types.ts';

// The control API (EMULATOR.md): JSON over HTTP on loopback, a thin mapping onto the Emulator's
// typed helpers. Errors answer {error} with 400/404/409.

type Handler = (params: Record<string, unknown>, match: RegExpExecArray) => unknown | Promise<unknown>;

export class ControlServer {
  readonly address = { host: '127.0.0.1', port: 0 };
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly routes: Array<[string, RegExp, Handler]>;

  constructor(private readonly emu: Emulator) {
    const num = (v: unknown) => (v === undefined || v === null || v === '' ? undefined : Number(v));
    this.routes = [
      ['POST', /^\/users$/, (p) => emu.createUser(p as never)],
      ['GET', /^\/users\/([^/]+)\/code$/, (_p, m) => {
        const code = emu.lastCode(decodeURIComponent(m[1]!));
        if (!code) throw new TgError(404, 'no code sent to this phone');
        return code;
      }],
      ['GET', /^\/users\/([^/]+)\/recovery-code$/, (_p, m) => {
        const code = emu.recoveryCode(decodeURIComponent(m[1]!));
        if (!code) throw new TgError(404, 'no recovery code sent to this user');
        return code;
      }],
      ['POST', /^\/qr\/accept$/, (p) => {
        emu.acceptQr(String(p.token ?? ''), String(p.phone ?? ''));
        return { ok: true };
      }],
      ['POST', /^\/bots$/, (p) => emu.createBot(p as never)],
      ['POST', /^\/bots\/([^/]+)\/webhook$/, (p, m) => {
        emu.setWebhook(decodeURIComponent(m[1]!), p.url as string);
        return { ok: true };
      }],
      ['DELETE', /^\/bots\/([^/]+)\/webhook$/, (_p, m) => {
        emu.deleteWebhook(decodeURIComponent(m[1]!));
        return { ok: true };
      }],
      ['POST', /^\/chats$/, (p) => emu.createChat(p as never)],
      ['POST', /^\/updates$/, (p) => emu.pushUpdate(p as never)],
      ['GET', /^\/messages$/, (p) => emu.delivered({ chatId: num(p.chatId), fromId: num(p.fromId) })],
      ['POST', /^\/faults$/, (p) => {
        const platform = typeof p.target === 'string' ? emu.platforms.get(p.target as PlatformName) : undefined;
        if (platform) platform.fault(p as never);
        else emu.fault(p as never);
        return { ok: true };
      }],
      ['POST', /^\/clock$/, (p) => {
        const s = Number(p.advanceS);
        if (p.advanceS === undefined || p.advanceS === '' || !Number.isFinite(s) || s < 0) throw new PlatformControlError(400, 'advanceS must be a number of seconds >= 0');
        emu.clock.advance(s);
        return { now: new Date(emu.clock.now()).toISOString() };
      }],
      ['POST', /^\/sessions$/, async (p) => ({ session: await emu.createSession(String(p.phone ?? '')) })],
      ['GET', /^\/stats$/, () => emu.stats()],
      ['POST', /^\/reset$/, () => {
        emu.reset();
        return { ok: true };
      }],
    ];
    this.server = createServer((req, res) => void this.handle(req, res));
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  async listen(host: string, port: number): Promise<number> {
    this.address.port = await listenOn(this.server, host, port);
    this.address.host = host;
    return this.address.port;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://control');
    try {
      const prefix = /^\/([a-z]+)(\/.*)$/.exec(url.pathname);
      const platform = prefix ? this.emu.platforms.get(prefix[1] as PlatformName) : undefined;
      if (platform) {
        const params = await readParams(req, url);
        const answer = await platform.control(req.method ?? 'GET', prefix![2]!, url.searchParams, params);
        return answer ? sendJson(res, answer.status, answer.body) : sendJson(res, 404, { error: 'no such control call' });
      }
      let pathKnown = false;
      for (const [method, pattern, handler] of this.routes) {
        const match = pattern.exec(url.pathname);
        if (!match) continue;
        pathKnown = true;
        if (req.method !== method) continue;
        const result = await handler(await readParams(req, url), match);
        return sendJson(res, 200, result);
      }
      if (pathKnown) return sendJson(res, 405, { error: 'method not allowed' });
      sendJson(res, 404, { error: 'no such control call' });
    } catch (err) {
      if (err instanceof TgError) return sendJson(res, err.code === 404 ? 404 : err.message.endsWith('_OCCUPIED') ? 409 : 400, { error: err.message });
      if (err instanceof BodyError || err instanceof PlatformControlError) return sendJson(res, err.status, { error: err.message });
      process.stderr.write(`[emulator] control failure: ${(err as Error).stack ?? String(err)}\n`);
      sendJson(res, 500, { error: 'internal error' });
    }
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
