/**
 * Whether a process with this pid runs on this host (signal 0 probes without signalling). EPERM: it
 * runs under another user. Not a pid (0 would probe our own process group) → false.
 */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
