// Embedded mode (no DATABASE_URL): PGlite, real Postgres compiled to WASM, keeps its files under
// $DATA_DIR/pglite and is served on a loopback port by pglite-socket, so the daemon talks to it through
// the same `postgres` client and the same SQL as to a real server.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import type { Logger } from 'winston';

export interface EmbeddedServer {
  host: string;
  port: number;
  dataDir: string;
  close(): Promise<void>;
}

export class EmbeddedDatabaseError extends Error {
  constructor(message: string, opts?: { cause?: unknown }) {
    super(message, opts);
    this.name = 'EmbeddedDatabaseError';
  }
}

const internals = {
  // PGlite has no postmaster guarding its directory: two processes (or two opens in one process)
  // writing the same files would corrupt it, so a pid file makes the second opener fail loudly.
  lock(path: string): () => void {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        writeFileSync(path, String(process.pid), { flag: 'wx' });
        return () => rmSync(path, { force: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const pid = Number(readFileSync(path, 'utf8').trim());
        if (internals.alive(pid)) throw new EmbeddedDatabaseError(`embedded database ${path.replace(/\.lock$/, '')} is already open in process ${pid}`);
        rmSync(path, { force: true }); // left behind by a process that died
      }
    }
    throw new EmbeddedDatabaseError(`could not take the lock ${path}`);
  },
  alive(pid: number): boolean {
    if (!Number.isInteger(pid) || pid <= 0) return false;
    try {
      process.kill(pid, 0);
      return true;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'EPERM';
    }
  },
};

export async function startEmbedded(dataDir: string, log?: Logger): Promise<EmbeddedServer> {
  const dir = join(dataDir, 'pglite');
  mkdirSync(dataDir, { recursive: true });
  const unlock = internals.lock(join(dataDir, 'pglite.lock'));
  const started = Date.now();
  let db: PGlite | undefined;
  try {
    db = await PGlite.create(dir);
    // The client pool has max 1 (PGlite is one session). The slack of 3 only covers a reconnect that
    // arrives before the server has noticed the old socket's close; the server then queues queries.
    const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 4 });
    await server.start();
    const [host, port] = server.getServerConn().split(':') as [string, string];
    log?.info('embedded database started', { dir, port: Number(port), ms: Date.now() - started });
    const pglite = db;
    let closed = false;
    return {
      host,
      port: Number(port),
      dataDir: dir,
      async close() {
        if (closed) return;
        closed = true;
        try {
          await server.stop();
          await pglite.close();
        } finally {
          unlock();
        }
      },
    };
  } catch (err) {
    await db?.close().catch(() => undefined);
    unlock();
    throw err instanceof EmbeddedDatabaseError ? err : new EmbeddedDatabaseError(`embedded database in ${dir} did not start: ${(err as Error).message}`, { cause: err });
  }
}
