// Per-chat and per-connection send pacing to the platform's limits (its adapter's pacing windows),
// by next-free-slot scheduling:
// a message either takes a free slot now, waits in memory for one that is at most holdMs away
// (best priority first), or is deferred to a computed future slot (the caller reschedules the row).
// Deferred slots are placed by the chat's windows, counting the slots already promised: a burst of 50
// into a Telegram chat (1 per second) comes back one per second instead of all at once, a burst of 10
// to a WhatsApp customer (45 per 270 s) comes back together; a later message of the same or lower
// priority queues behind them instead of jumping ahead. Time comes from an injected Clock.
//
// A slot is taken before the row is marked `sending` and before the platform call leaves; on a
// saturated event loop that gap varied by hundreds of ms, and the emulator served 143–656 flood
// waits per 100,000/min run. So the call itself passes a second gate (beforeCall): the same windows,
// counted over the chat's and connection's actual calls, each stamped with the time its answer came
// back. Telegram saw a call no later than its answer, and sees the next one no earlier than it
// leaves, so spacing measured from answer to departure holds at Telegram whatever the local lag.
import type { RateWindow } from '../platforms/adapter.ts';
import { systemClock, type Clock, type Priority } from './types.ts';

export interface PaceTarget {
  id: string;
  connectionId: string;
  chat: string;
  /** The platform's limits for this chat and for the whole connection (SendCapabilities.pacing). */
  windows: { chat: RateWindow[]; connection: RateWindow[] };
  priority: Priority;
  createdAt: number;
}

export type PaceDecision = { go: true } | { go: false; until: number };

export interface PacerOptions {
  clock?: Clock;
  /** longest in-memory wait for a slot before deferring to the database; 2.5 s = 2 chat slots */
  holdMs?: number;
  /** a bucket unused this long is dropped (memory stays bounded by active chats) */
  idleMs?: number;
  /**
   * added to every window: the slot is taken before the row is marked `sending`, so database
   * latency jitter (a few ms) would otherwise put two platform calls just under 1 s apart.
   */
  marginMs?: number;
  /**
   * longest wait at the call gate: a call still unanswered after this (a hung request, up to the
   * sender's timeout) stops holding the next one; 5 s, several times a send's round trip even on
   * a saturated loop, and short enough that a chat is not stalled by one hung call.
   */
  callHoldMs?: number;
}

/**
 * beforeCall's answer: go, and call done() once the platform answered or failed (idempotent);
 * or the chat/connection is paused by a flood wait past the hold: come back at `until`.
 */
export type CallDecision = { go: true; done: () => void } | { go: false; until: number };

interface Window { n: number; ms: number; times: number[] }

interface Waiter { rank: number; order: number; seq: number; wake: () => void }

interface Bucket {
  windows: Window[];
  pausedUntil: number;
  /** per priority rank: slots promised to deferred messages (ascending; dropped when taken or old) */
  promised: [number[], number[], number[]];
  waiters: Set<Waiter>;
  /** per window: answer times of the last n finished calls, ascending */
  answered: number[][];
  /** calls that left and have no answer yet */
  inflight: number;
  /** wakers of calls held at the gate; a finished call wakes them */
  callWaiters: Set<() => void>;
  lastUsed: number;
}

const rankOf: Record<Priority, number> = { high: 0, normal: 1, low: 2 };

export class Pacer {
  private readonly clock: Clock;
  private readonly holdMs: number;
  private readonly idleMs: number;
  private readonly marginMs: number;
  private readonly callHoldMs: number;
  private readonly buckets = new Map<string, Bucket>();
  /** message id → deferred slot it was promised; honoured when the message comes back */
  private readonly reservations = new Map<string, number>();
  private waiterSeq = 0;
  private lastPrune = 0;

  constructor(o: PacerOptions = {}) {
    this.clock = o.clock ?? systemClock;
    this.holdMs = o.holdMs ?? 2500;
    this.idleMs = o.idleMs ?? 10 * 60_000;
    this.marginMs = o.marginMs ?? 50;
    this.callHoldMs = o.callHoldMs ?? 5000;
  }

  /**
   * Resolves { go: true } when the slot is taken (send now), or { go: false, until } when the
   * message should come back at `until` (epoch ms). An abort (shutdown) defers at once.
   */
  async acquire(t: PaceTarget, signal?: AbortSignal): Promise<PaceDecision> {
    const chat = this.bucket(chatKey(t), () => this.chatWindows(t));
    const conn = this.bucket(connKey(t), () => this.connWindows(t));
    const reserved = this.reservations.get(t.id);
    const w: Waiter = { rank: rankOf[t.priority], order: reserved ?? t.createdAt, seq: this.waiterSeq++, wake: () => undefined };
    try {
      for (;;) {
        const now = this.clock.now();
        this.prune(now);
        // Messages already waiting in memory with a better place go first, one slot each.
        const ahead = [...chat.waiters].filter((o) => o !== w && before(o, w)).length;
        let at = Math.max(earliest(chat, now), earliest(conn, now), ahead > 0 ? fit(chat, [], now, ahead) : now);
        // Deferred messages of the same or higher priority are ahead in the line: a fresh message
        // goes behind them. A returning message holds its own place (reserved).
        // Once waiting in memory, its place was already behind them.
        if (reserved === undefined && !chat.waiters.has(w) && hasPromises(chat, w.rank)) at = Math.max(at, fit(chat, promisedUpTo(chat, w.rank), at, 0));
        if (at <= now && !signal?.aborted) {
          take(chat, now);
          take(conn, now);
          if (reserved !== undefined) unpromise(chat, reserved);
          this.reservations.delete(t.id);
          for (const o of chat.waiters) o.wake();
          return { go: true };
        }
        if (at - now > this.holdMs || signal?.aborted) return { go: false, until: this.defer(t, chat, w.rank, at) };
        chat.waiters.add(w);
        const woken = new AbortController();
        w.wake = () => woken.abort();
        const onAbort = () => woken.abort();
        signal?.addEventListener('abort', onAbort, { once: true });
        await this.clock.sleep(at - now, woken.signal);
        signal?.removeEventListener('abort', onAbort);
      }
    } finally {
      chat.waiters.delete(w);
    }
  }

  /**
   * The gate right before the platform call (after acquire() said go and the row is `sending`):
   * waits until the chat's and connection's windows, counted over finished calls by their answer
   * time and over unanswered calls as still occupying them, allow one more call; then counts this
   * call as in flight. An abort, or callHoldMs spent waiting on windows, lets the call go (a hung
   * call must not stop the chat). A flood wait that came in since the slot (pause()) is waited out
   * when it ends within the hold, else the message is deferred like in acquire().
   */
  async beforeCall(t: PaceTarget, signal?: AbortSignal): Promise<CallDecision> {
    const chat = this.bucket(chatKey(t), () => this.chatWindows(t));
    const bs = [chat, this.bucket(connKey(t), () => this.connWindows(t))];
    const start = this.clock.now();
    for (;;) {
      const now = this.clock.now();
      const left = start + this.callHoldMs - now;
      const paused = Math.max(bs[0]!.pausedUntil, bs[1]!.pausedUntil);
      if (paused > now && (paused - now > left || signal?.aborted)) {
        return { go: false, until: this.defer(t, chat, rankOf[t.priority], paused) };
      }
      let wait = paused - now;
      for (const b of bs) wait = Math.max(wait, callWait(b, now));
      if (wait <= 0 || left <= 0 || signal?.aborted) break;
      const woken = new AbortController();
      const wake = () => woken.abort();
      for (const b of bs) b.callWaiters.add(wake);
      signal?.addEventListener('abort', wake, { once: true });
      await this.clock.sleep(Math.min(wait, left), woken.signal);
      signal?.removeEventListener('abort', wake);
      for (const b of bs) b.callWaiters.delete(wake);
    }
    for (const b of bs) b.inflight++;
    let finished = false;
    const done = () => {
      if (finished) return;
      finished = true;
      const now = this.clock.now();
      for (const b of bs) {
        b.inflight--;
        answered(b, now);
        for (const wake of b.callWaiters) wake();
      }
    };
    return { go: true, done };
  }

  /**
   * Telegram answered a flood wait: nothing more goes to that chat (or the whole connection) before
   * retryAfter; returns the slot at which the refused message itself goes, first in line.
   */
  pause(t: PaceTarget, retryAfterS: number, scope: 'chat' | 'connection'): number {
    const now = this.clock.now();
    const chat = this.bucket(chatKey(t), () => this.chatWindows(t));
    const b = scope === 'chat' ? chat : this.bucket(connKey(t), () => this.connWindows(t));
    const until = now + Math.max(0, retryAfterS) * 1000;
    b.pausedUntil = Math.max(b.pausedUntil, until);
    const slot = Math.max(until, chat.pausedUntil);
    const old = this.reservations.get(t.id);
    if (old !== undefined) unpromise(chat, old);
    this.reservations.set(t.id, slot);
    promise(chat.promised[rankOf[t.priority]]!, slot);
    return slot;
  }

  /** buckets and reservations held; for the memory bound and stats */
  size(): { buckets: number; reservations: number } {
    return { buckets: this.buckets.size, reservations: this.reservations.size };
  }

  private defer(t: PaceTarget, chat: Bucket, rank: number, at: number): number {
    const old = this.reservations.get(t.id);
    if (old !== undefined) unpromise(chat, old);
    const slot = fit(chat, promisedUpTo(chat, rank), at, 0);
    promise(chat.promised[rank]!, slot);
    this.reservations.set(t.id, slot);
    return slot;
  }

  // A bucket takes its windows when it is created (the first message of a chat or connection).
  private chatWindows(t: PaceTarget): Window[] {
    return t.windows.chat.map((w) => ({ n: w.n, ms: w.ms + this.marginMs, times: [] }));
  }

  private connWindows(t: PaceTarget): Window[] {
    return t.windows.connection.map((w) => ({ n: w.n, ms: w.ms + this.marginMs, times: [] }));
  }

  private bucket(key: string, windows: () => Window[]): Bucket {
    let b = this.buckets.get(key);
    if (b) b.lastUsed = Math.max(b.lastUsed, this.clock.now());
    else {
      const ws = windows();
      b = {
        windows: ws, pausedUntil: 0,
        promised: [[], [], []], waiters: new Set(), answered: ws.map(() => []), inflight: 0, callWaiters: new Set(),
        lastUsed: this.clock.now(),
      };
      this.buckets.set(key, b);
    }
    return b;
  }

  // At most once a second; O(buckets) but only idle ones go, so memory follows the active chats.
  private prune(now: number): void {
    if (now - this.lastPrune < 1000) return;
    this.lastPrune = now;
    const idleBefore = now - this.idleMs;
    for (const [k, b] of this.buckets) {
      // A promise older than the longest window no longer limits any slot (its message failed,
      // was deleted or went elsewhere).
      const longest = Math.max(0, ...b.windows.map((w) => w.ms));
      for (const p of b.promised) while (p.length > 0 && p[0]! < now - longest) p.shift();
      const busy = b.waiters.size > 0 || b.inflight > 0 || b.callWaiters.size > 0 || b.pausedUntil > now || b.promised.some((p) => p.length > 0);
      if (!busy && b.lastUsed < idleBefore) this.buckets.delete(k);
    }
    for (const [id, slot] of this.reservations) if (slot < idleBefore) this.reservations.delete(id);
  }
}

const chatKey = (t: PaceTarget) => `c\u0000${t.connectionId}\u0000${t.chat}`;
const connKey = (t: PaceTarget) => `k\u0000${t.connectionId}`;

function earliest(b: Bucket, now: number): number {
  let at = Math.max(now, b.pausedUntil);
  b.windows.forEach((w, i) => {
    if (w.times.length >= w.n) at = Math.max(at, w.times[w.times.length - w.n]! + w.ms);
    // Slots also follow the answers, so a lagging chat is not handed slots the call gate would
    // only hold (rows waiting there are already `sending`).
    const a = b.answered[i]!;
    if (a.length >= w.n) at = Math.max(at, a[a.length - w.n]! + w.ms);
  });
  return at;
}

/** ms until every window of b allows one more call (Infinity: only an answer can free one). */
function callWait(b: Bucket, now: number): number {
  let wait = 0;
  b.windows.forEach((w, i) => {
    const a = b.answered[i]!;
    let live = a.length;
    while (live > 0 && a[a.length - live]! + w.ms <= now) live--;
    const excess = b.inflight + live - w.n + 1; // calls that must leave the window first
    if (excess <= 0) return;
    wait = Math.max(wait, excess <= live ? a[a.length - live + excess - 1]! + w.ms - now : Infinity);
  });
  return wait;
}

/**
 * The earliest time from `from` on at which the chat's windows, counting its taken slots and
 * `promised`, have room for one more call after `ahead` others placed as early as they fit. For a
 * window of 1 per second that is one second after the last slot; for 45 per 270 s, the same instant
 * until 45 are placed.
 */
function fit(b: Bucket, promised: number[], from: number, ahead: number): number {
  const placed: number[] = [];
  let at = from;
  for (let i = 0; i <= ahead; i++) {
    at = Math.max(at, promised.length > 0 ? promised[promised.length - 1]! : at);
    for (const w of b.windows) {
      const taken = [...w.times, ...promised, ...placed];
      if (promised.length > 0) taken.sort((x, y) => x - y);
      if (taken.length >= w.n) at = Math.max(at, taken[taken.length - w.n]! + w.ms);
    }
    placed.push(at);
  }
  return at;
}

const hasPromises = (b: Bucket, rank: number) => b.promised.some((p, r) => r <= rank && p.length > 0);

/** The slots promised to ranks 0..rank (this priority and better), ascending. */
function promisedUpTo(b: Bucket, rank: number): number[] {
  const all = b.promised.slice(0, rank + 1).flat();
  return rank === 0 ? all : all.sort((x, y) => x - y);
}

function promise(list: number[], slot: number): void {
  let i = list.length;
  while (i > 0 && list[i - 1]! > slot) i--;
  list.splice(i, 0, slot);
}

/** A message came back for its promised slot (or was deferred again): the promise is spent. */
function unpromise(b: Bucket, slot: number): void {
  for (const list of b.promised) {
    const i = list.indexOf(slot);
    if (i >= 0) { list.splice(i, 1); return; }
  }
}

function answered(b: Bucket, at: number): void {
  b.lastUsed = Math.max(b.lastUsed, at);
  b.windows.forEach((w, i) => {
    const a = b.answered[i]!;
    a.push(at);
    if (a.length > 1 && a[a.length - 2]! > at) a.sort((x, y) => x - y); // wall clock stepped back
    if (a.length > w.n) a.splice(0, a.length - w.n);
  });
}

function take(b: Bucket, at: number): void {
  b.lastUsed = at;
  for (const w of b.windows) {
    w.times.push(at);
    if (w.times.length > w.n) w.times.splice(0, w.times.length - w.n);
  }
}

const before = (a: Waiter, b: Waiter) =>
  a.rank !== b.rank ? a.rank < b.rank : a.order !== b.order ? a.order < b.order : a.seq < b.seq;
