// Embedded mode (no DATABASE_URL): PGlite, real Postgres compiled to WASM, keeps its files under
// $DATA_DIR/pglite and is served by pglite-socket, so the daemon talks to it through the same
// `postgres` client and the same SQL as to a real server. The server has no password: it listens on a
// unix socket inside DATA_DIR, which must be 0700, so only the daemon's own user can connect (a loopback
// TCP port let every local user read every tenant's messages).
import { chmodSync, lstatSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import type { Logger } from 'winston';
import { pidAlive } from '../pid-alive.ts';
import { privateDir } from '../private-path.ts';

export interface EmbeddedServer {
  /** the unix socket; postgres.js takes it as `path` */
  socket: string;
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
        writeFileSync(path, String(process.pid), { flag: 'wx', mode: 0o600 });
        return () => rmSync(path, { force: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const pid = Number(readFileSync(path, 'utf8').trim());
        if (pidAlive(pid)) throw new EmbeddedDatabaseError(`embedded database ${path.replace(/\.lock$/, '')} is already open in process ${pid}`);
        rmSync(path, { force: true }); // left behind by a process that died
      }
    }
    throw new EmbeddedDatabaseError(`could not take the lock ${path}`);
  },
  // sun_path holds 108 bytes with its NUL. A deep DATA_DIR falls back to the path relative to the
  // working directory (the daemon never changes it), e.g. "data/pglite.sock".
  socketPath(dataDir: string): string {
    const absolute = join(dataDir, 'pglite.sock');
    if (Buffer.byteLength(absolute) <= 107) return absolute;
    const near = relative(process.cwd(), absolute);
    if (Buffer.byteLength(near) <= 107) return near;
    throw new EmbeddedDatabaseError(`DATA_DIR ${dataDir} is too long for the embedded database's unix socket (${absolute} is ${Buffer.byteLength(absolute)} bytes, at most 107): use a shorter DATA_DIR`);
  },
  // PGlite writes its files with modes of its own whatever the umask: initdb's ~970 files 0666, its
  // directories 0755, pg_internal.init 0644 (seen with 0.5.14). Narrowed at every start: ~1000 lstat
  // calls, 47 ms measured on a loaded 2-core box; DATA_DIR being 0700 keeps others out in the meantime.
  tighten(path: string): void {
    for (const entry of readdirSync(path, { withFileTypes: true })) {
      const child = join(path, entry.name);
      if (entry.isSymbolicLink()) continue;
      const want = entry.isDirectory() ? 0o700 : 0o600;
      if ((lstatSync(child).mode & 0o777) !== want) chmodSync(child, want);
      if (entry.isDirectory()) internals.tighten(child);
    }
  },
};

export async function startEmbedded(dataDir: string, log?: Logger): Promise<EmbeddedServer> {
  const dir = join(dataDir, 'pglite');
  const refused = privateDir(dataDir, 'DATA_DIR');
  if (refused) throw new EmbeddedDatabaseError(refused);
  const socket = internals.socketPath(dataDir);
  const unlock = internals.lock(join(dataDir, 'pglite.lock'));
  const started = Date.now();
  let db: PGlite | undefined;
  try {
    rmSync(socket, { force: true }); // left by a process that died: the lock says none is alive
    db = await PGlite.create(dir);
    chmodSync(dir, 0o700);
    internals.tighten(dir);
    // The client pool has max 1 (PGlite is one session). The slack of 3 only covers a reconnect that
    // arrives before the server has noticed the old socket's close; the server then queues queries.
    const server = new PGLiteSocketServer({ db, path: socket, maxConnections: 4 });
    await server.start();
    chmodSync(socket, 0o600);
    log?.info('embedded database started', { dir, socket, ms: Date.now() - started });
    const pglite = db;
    let closed = false;
    return {
      socket,
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
