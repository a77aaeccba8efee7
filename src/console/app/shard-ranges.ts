/** `[0, 1, 2, 3, 7, 9, 10]` → `0–3, 7, 9–10`: 64 shard numbers stay readable in one cell. */
export const shardRanges = (shards: readonly number[]): string => {
  const sorted = [...shards].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; i++) {
    const start = sorted[i]!;
    while (i + 1 < sorted.length && sorted[i + 1] === sorted[i]! + 1) i++;
    parts.push(start === sorted[i] ? String(start) : `${start}–${sorted[i]}`);
  }
  return parts.join(', ');
};
