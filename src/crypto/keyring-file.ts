// The local keyring's file: JSON with each key version wrapped by the master key. It is the only copy of
// the data keys, so every write is atomic (temp file + fsync + rename), creation is first-writer-wins
// (link() fails if the name exists) and read-modify-write runs under an O_EXCL lock file, so two processes
// starting or rotating at once never lose a version.
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { link, mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { notPrivate } from '../private-path.ts';
import { KeyringError } from './port.ts';

export interface KeyVersionRecord {
  version: number;
  createdAt: string; // ISO time
  key: string; // base64(nonce ‖ wrapped data key ‖ tag), wrapped by the master key
}

export interface KeyringFileData {
  format: 1;
  master?: string; // base64; present only when the file generated its own master (no KEYRING_KEY)
  versions: KeyVersionRecord[];
}

const internals = {
  // A crashed holder leaves its lock behind; no healthy update holds it for more than a few ms.
  staleLockMs: 30_000,
  lockWaitMs: 10_000,
  lockPollMs: 20,
};

// Missing file → null. A file readable by group or others is refused: it holds (wrapped) keys and
// possibly the master key itself.
export async function readKeyringFile(path: string): Promise<KeyringFileData | null> {
  let text: string;
  try {
    await assertPrivate(path);
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  return parse(path, text);
}

export async function assertPrivate(path: string): Promise<void> {
  const refused = notPrivate(path, 'keyring file');
  if (refused) throw new KeyringError('config', refused);
}

// Writes `data` as a new file unless one exists already; returns whichever content won.
export async function createKeyringFile(path: string, data: KeyringFileData): Promise<KeyringFileData> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const temp = await writeTemp(path, data);
  try {
    await link(temp, path);
    return data;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const existing = await readKeyringFile(path);
    if (!existing) throw new KeyringError('config', `keyring file ${path} vanished while being created`);
    return existing;
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

// Read-modify-write under the lock. `change` returns the new content, or null to leave the file as it is.
export async function updateKeyringFile(
  path: string,
  change: (current: KeyringFileData) => KeyringFileData | null,
): Promise<KeyringFileData> {
  const release = await lock(path);
  try {
    const current = await readKeyringFile(path);
    if (!current) throw new KeyringError('config', `keyring file ${path} does not exist`);
    const next = change(current);
    if (!next) return current;
    const temp = await writeTemp(path, next);
    await rename(temp, path);
    return next;
  } finally {
    await release();
  }
}

async function writeTemp(path: string, data: KeyringFileData): Promise<string> {
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fh = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  try {
    await fh.writeFile(`${JSON.stringify(data, null, 2)}\n`);
    await fh.sync(); // the rename must never expose a file whose content is not on disk yet
  } finally {
    await fh.close();
  }
  return temp;
}

async function lock(path: string): Promise<() => Promise<void>> {
  const lockPath = `${path}.lock`;
  const deadline = Date.now() + internals.lockWaitMs;
  for (;;) {
    try {
      const fh = await open(lockPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      await fh.writeFile(String(process.pid));
      await fh.close();
      return () => unlink(lockPath).catch(() => undefined);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const held = await stat(lockPath).catch(() => null);
    if (held && Date.now() - held.mtimeMs > internals.staleLockMs) {
      await unlink(lockPath).catch(() => undefined);
      continue;
    }
    if (Date.now() > deadline) {
      throw new KeyringError('config', `keyring file ${path} is locked by another process (${lockPath}) for over ${internals.lockWaitMs} ms`);
    }
    await delay(internals.lockPollMs);
  }
}

function parse(path: string, text: string): KeyringFileData {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new KeyringError('config', `keyring file ${path} is not valid JSON`);
  }
  const d = data as Partial<KeyringFileData>;
  const ok = d && d.format === 1 && Array.isArray(d.versions) && d.versions.length > 0 &&
    d.versions.every((v) => Number.isInteger(v?.version) && v.version > 0 && typeof v.key === 'string' &&
      typeof v.createdAt === 'string' && !Number.isNaN(Date.parse(v.createdAt))) &&
      (d.master === undefined || typeof d.master === 'string');
  if (!ok) throw new KeyringError('config', `keyring file ${path} is not a keyring file (format 1 with versions)`);
  return d as KeyringFileData;
}
