// The persistence half of the restore rule shared by every connection machine.
//
// xstate 5.33 restores invoked children from a persisted snapshot and START THEM AGAIN: a
// `fromPromise` child whose snapshot was still 'active' re-runs its promise with the saved
// input (signIn with an already-used code, sendCode sending a second SMS, checkPassword with a
// password that died with the old process), and a `fromCallback` watcher re-subscribes to a
// client that no longer exists. Pending `after` timers are not restored at all.
//
// So what goes to the database is the persisted snapshot WITHOUT its children: nothing in flight
// survives a restart, and the machine redoes it deliberately when the supervisor sends `RESUME`
// (each state documents what RESUME does). Dropping children also drops the children's saved
// inputs, which the machine does not need: what a retry needs is in context.

export type StoredSnapshot = Record<string, unknown> & { value: unknown; context: unknown; children: Record<string, never> };

export const toStoredSnapshot = (persisted: unknown): StoredSnapshot => {
  const copy = JSON.parse(JSON.stringify(persisted)) as Record<string, unknown>;
  if (copy === null || typeof copy !== 'object' || !('value' in copy) || !('context' in copy)) {
    throw new TypeError('not a persisted machine snapshot');
  }
  return { ...copy, value: copy.value, context: copy.context, children: {} };
};

// The API status is the top-level state key; works on live and on stored (JSON) snapshots.
export const topLevelState = (snapshot: { value: unknown }): string => {
  const { value } = snapshot;
  if (typeof value === 'string') return value;
  if (value !== null && typeof value === 'object') {
    const [key] = Object.keys(value);
    if (key !== undefined) return key;
  }
  throw new TypeError('snapshot has no state value');
};
