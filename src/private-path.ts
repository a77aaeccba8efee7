// Files that hold secrets or every tenant's data (the keyring, the generated JWT secret, the embedded
// database) must be reachable by their owner only: another local user must neither read nor replace
// them. One check and one wording for all of them; each caller wraps the sentence in its own error.
import { mkdirSync, statSync } from 'node:fs';

/** null when only the owner has access; else the refusal, naming the chmod that fixes it. ENOENT is thrown. */
export function notPrivate(path: string, what: string): string | null {
  const st = statSync(path);
  if ((st.mode & 0o077) === 0) return null;
  const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
  const access = st.mode & 0o044 ? 'readable' : 'accessible';
  // -R: a directory left by an older version also holds files that are open to others (PGlite's were 0666).
  const fix = st.isDirectory() ? `chmod -R go-rwx ${path}` : `chmod 600 ${path}`;
  return `${what} ${path} has mode ${mode}: it is ${access} by group/others, refusing to use it; run ${fix}`;
}

/** Creates the directory (and missing parents) 0700, or checks an existing one: the refusal, or null. */
export function privateDir(path: string, what: string): string | null {
  mkdirSync(path, { recursive: true, mode: 0o700 });
  return notPrivate(path, what);
}
