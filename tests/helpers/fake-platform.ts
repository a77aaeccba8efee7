// A FAKE PLATFORM ADAPTER: the whole platform interface (src/platforms/adapter.ts) implemented over an
// in-memory, scriptable "platform" instead of a network service. It proves the interface is enough
// for the supervisor, the connection service and delivery, and it is the worked example of
// docs/adding-a-platform.md. Two kinds:
//   token: a token checked by connect (the shared bot lifecycle, machines/bot.machine.ts)
//   code:  a login code the user types (its own small login part on the shared lifecycle)
import Joi from 'joi';
import { assign, fromCallback, fromPromise, type AnyStateMachine } from 'xstate';
import { botMachine } from '../../machines/bot.machine.ts';
import { connectionMachine, errorParams, failTo, type ConnectOutput, type Profile, type StepInput } from '../../machines/connection.ts';
import { AppError, type ErrorCategory, type ErrorCodeSpec } from '../../src/errors.ts';
import type { ConnectionKind, Driver, DriverContext, NewConnectionPlan, PlatformAdapter } from '../../src/platforms/adapter.ts';

export const fakeCodes = {
  FAKE_CODE_INVALID: { status: 422, category: 'rejected' },
  FAKE_REFUSED: { status: 422, category: 'rejected' },
  FAKE_SLOW_DOWN: { status: 429, category: 'rate-limited-until' },
  FAKE_QUOTA: { status: 429, category: 'quota-until' },
  FAKE_REVOKED: { status: 422, category: 'reauthorize' },
  FAKE_BANNED: { status: 422, category: 'fatal' },
  FAKE_DOWN: { status: 503, category: 'retry' },
  FAKE_NO_ANSWER: { status: 503, category: 'outcome-unknown' },
} satisfies Record<string, ErrorCodeSpec>;

export type FakeCode = keyof typeof fakeCodes;

/** The error a scripted step throws: a code of the table, optionally about the whole connection. */
export const fakeError = (code: FakeCode, opts: { retryAfter?: number; scope?: 'request' | 'connection' } = {}) =>
  new AppError(code, `${code} from the fake platform`, opts);

type Step<T> = T | AppError | (() => T | AppError | Promise<T | AppError>);

/** What the fake platform does, per connection id; unset steps succeed. */
export interface FakeScript {
  connect?: Step<ConnectOutput>[];
  verifyCode?: Step<Profile>[];
  send?: Step<{ platformMessageId: string }>[];
}

/** The "platform": scripts per connection, what it was asked, and the live watchers to push events through. */
export class FakeWorld {
  readonly scripts = new Map<string, FakeScript>();
  readonly calls: Array<{ connectionId: string; step: string; arg?: unknown }> = [];
  readonly watchers = new Map<string, (event: { type: string; [k: string]: unknown }) => void>();
  /** Tokens the platform knows (prepare checks them, as getMe would). */
  readonly tokens = new Set<string>();
  /** Accounts by the code that logs them in. */
  readonly codes = new Map<string, Profile>();

  script(connectionId: string, s: FakeScript): void {
    const cur = this.scripts.get(connectionId) ?? {};
    for (const [k, v] of Object.entries(s) as [keyof FakeScript, Step<unknown>[]][]) (cur[k] as Step<unknown>[]) = [...(cur[k] ?? []), ...v];
    this.scripts.set(connectionId, cur);
  }

  count(connectionId: string, step: string): number {
    return this.calls.filter((c) => c.connectionId === connectionId && c.step === step).length;
  }

  /** Pushes a platform event to the connection's watcher (CONNECTION_DROPPED, REVOKED, UPDATE). */
  push(connectionId: string, event: { type: string; [k: string]: unknown }): void {
    this.watchers.get(connectionId)?.(event);
  }

  async run<T>(connectionId: string, step: keyof FakeScript, fallback: () => T | AppError, arg?: unknown): Promise<T> {
    this.calls.push({ connectionId, step, ...(arg === undefined ? {} : { arg }) });
    const next = this.scripts.get(connectionId)?.[step]?.shift() as Step<T> | undefined;
    const out = typeof next === 'function' ? await (next as () => T | AppError | Promise<T | AppError>)() : next ?? fallback();
    if (out instanceof AppError) throw out;
    return out;
  }
}

const failures = {
  dropped: { code: 'FAKE_DOWN', message: 'the fake link dropped', category: 'retry' as const },
  revoked: { code: 'FAKE_REVOKED', message: 'the fake platform revoked the credentials', category: 'reauthorize' as const },
};

const notProvided = async (): Promise<never> => {
  throw new Error("fake code machine: slot 'verifyCode' not provided");
};

// The code kind's login part: connect → (not authorised) awaiting-code → CODE → verifyCode → active.
// RESUME in awaiting-code.checking goes back to idle (the request that carried the code died).
const codeMachine = () => connectionMachine({
  id: 'fakecode',
  errors: failures,
  actors: { verifyCode: fromPromise<Profile, StepInput & { code: string }>(notProvided) },
  actions: { setPendingCode: assign((_, p: { code: string }) => ({ pendingCode: p.code })), clearPendingCode: assign({ pendingCode: null }) },
  context: () => ({ pendingCode: null }),
  onActive: { pendingCode: null },
  cleanup: ['clearPendingCode'],
  unauthorized: [{ target: '#fakecode.awaiting-code' }],
  states: {
    'awaiting-code': {
      entry: 'settled',
      initial: 'idle',
      states: {
        idle: { on: { CODE: { target: 'checking', actions: { type: 'setPendingCode', params: ({ event }: any) => ({ code: event.code }) } } } },
        checking: {
          tags: 'busy',
          invoke: {
            src: 'verifyCode',
            input: ({ context }: any) => ({ connectionId: context.connectionId, code: context.pendingCode ?? '' }),
            onDone: { target: '#fakecode.active', actions: [{ type: 'setProfile', params: ({ event }: any) => ({ profile: event.output }) }, 'clearPendingCode'] },
            onError: [
              { guard: { type: 'isUserError', params: errorParams }, target: 'idle', actions: [{ type: 'recordFailure', params: errorParams }, 'clearPendingCode'] },
              ...failTo('fakecode', '#fakecode.connecting.wait', ['clearPendingCode']),
            ],
          },
          on: { RESUME: { target: 'idle', actions: 'clearPendingCode' } },
        },
      },
    },
  },
});

function provide(machine: AnyStateMachine, slotsOf: (id: string) => Driver['slots']): AnyStateMachine {
  const slot = (id: string, name: string) => slotsOf(id)[name] as (...a: unknown[]) => Promise<unknown>;
  return machine.provide({
    actors: {
      connect: fromPromise<ConnectOutput, StepInput>(({ input }) => slot(input.connectionId, 'connect')() as Promise<ConnectOutput>),
      verifyCode: fromPromise<Profile, StepInput & { code: string }>(({ input }) => slot(input.connectionId, 'verifyCode')(input.code) as Promise<Profile>),
      logOut: fromPromise<void, StepInput>(({ input }) => slot(input.connectionId, 'logOut')() as Promise<void>),
      watch: fromCallback<any, StepInput>(({ sendBack, input }) => slot(input.connectionId, 'watch')(sendBack) as unknown as () => void),
    },
  });
}

function fakeDriver(world: FakeWorld, ctx: DriverContext): Driver {
  const id = ctx.connectionId;
  const slots = {
    connect: () => ctx.guard(async () => {
      const { token, code_account: account } = await ctx.secrets.load();
      return world.run<ConnectOutput>(id, 'connect', () => (token || account
        ? { authorized: true, profile: { platformUserId: token ? `t-${token}` : account!, displayName: 'Fake' } }
        : { authorized: false }));
    }),
    verifyCode: async (code: string) => {
      const profile = await world.run<Profile>(id, 'verifyCode', () => {
        const p = world.codes.get(code);
        return p ?? fakeError('FAKE_CODE_INVALID');
      }, code);
      await ctx.secrets.save('code_account', profile.platformUserId);
      return profile;
    },
    logOut: async () => { world.calls.push({ connectionId: id, step: 'logOut' }); },
    watch: (sendBack: (e: { type: string; [k: string]: unknown }) => void) => {
      world.watchers.set(id, sendBack);
      return () => { if (world.watchers.get(id) === sendBack) world.watchers.delete(id); };
    },
  };
  return {
    slots,
    send: (msg) => world.run(id, 'send', () => ({ platformMessageId: `fake-${msg.id.slice(0, 8)}` }), msg.text),
    received: (update) => (typeof update === 'object' && update !== null && 'text' in update
      ? { chat: 'c', from: 'f', text: String((update as { text: unknown }).text), platformMessageId: '1', date: new Date(0).toISOString() }
      : null),
    bytes: () => 1024,
    trim: () => undefined,
    logOut: slots.logOut,
    dispose: async () => { world.watchers.delete(id); },
  };
}

/** The fake adapter over `world`; `categories` lists every category its codes cover (for the tests' bookkeeping). */
export function fakeAdapter(world: FakeWorld): PlatformAdapter {
  const send = (resendSafe: boolean) => ({
    text: { maxLength: 1000, parseModes: [] },
    resendSafe,
    pacing: () => ({ chat: [{ n: 100, ms: 1000 }], connection: [] }),
  });
  const token: ConnectionKind = {
    kind: 'token', machineVersion: 1,
    machine: (slotsOf) => provide(botMachine(failures), slotsOf),
    input: (row, backoff) => ({ connectionId: row.id, backoff }),
    driver: (ctx) => fakeDriver(world, ctx),
    loginSteps: [],
    send: send(false),
  };
  const code: ConnectionKind = {
    kind: 'code', machineVersion: 1,
    machine: (slotsOf) => provide(codeMachine(), slotsOf),
    input: (row, backoff) => ({ connectionId: row.id, login: 'code', backoff }),
    driver: (ctx) => fakeDriver(world, ctx),
    loginSteps: ['code'],
    send: send(true),
  };
  return {
    name: 'fake',
    kinds: [token, code],
    errorCodes: fakeCodes,
    createSchema: Joi.object({
      platform: Joi.string().valid('fake').required(),
      kind: Joi.string().valid('token', 'code').required(),
      token: Joi.string().max(64).when('kind', { is: 'token', then: Joi.required(), otherwise: Joi.forbidden() }),
    }).label('CreateFakeConnection'),
    async prepare(body): Promise<NewConnectionPlan> {
      if (body.kind === 'code') return { kind: 'code', secrets: {}, login: { method: 'code' }, audit: { kind: 'code' } };
      const t = String(body.token);
      if (!world.tokens.has(t)) throw fakeError('FAKE_BANNED');
      return { kind: 'token', secrets: { token: t }, profile: { platformUserId: `t-${t}`, displayName: 'Fake' }, accountId: `t-${t}`, audit: { kind: 'token' } };
    },
    classify: () => undefined,
  };
}

export const allCategories: ErrorCategory[] = ['retry', 'rate-limited-until', 'quota-until', 'reauthorize', 'rejected', 'outcome-unknown', 'fatal'];
