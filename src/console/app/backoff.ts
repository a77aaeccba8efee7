// Reconnect delays for the live-events socket: 1 s doubling to a 30 s cap, each drawn from the upper
// half of its window so that a thousand consoles dropped by one deploy do not return in lockstep.
export const baseDelayMs = 1_000;
export const maxDelayMs = 30_000;

export const reconnectDelay = (attempt: number, random: () => number = Math.random): number => {
  const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** Math.max(0, attempt));
  return Math.round(ceiling / 2 + (ceiling / 2) * random());
};
