// A throwaway package directory for the install-time patches' own tests (ops/patches): write files
// into it by their path inside the package, then remove it.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function withFakePackage(prefix: string, fn: (dir: string, write: (file: string, text: string) => void) => void): void {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  try {
    fn(dir, (file, text) => {
      mkdirSync(join(dir, file, '..'), { recursive: true });
      writeFileSync(join(dir, file), text);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
