// Starts the account machine with scripted fake slots and a simulated clock.
import { createActor, fromPromise, type InspectionEvent, type Snapshot } from 'xstate';
import {
  accountMachine, statusOf,
  type AccountInput, type CheckPasswordOutput, type ExportQrOutput,
  type Profile, type SendCodeOutput, type SignInInput, type SignInOutput, type StepInput,
} from '../../machines/account.machine.ts';
import type { ConnectOutput, LifecycleEvent } from '../../machines/connection.ts';
import { accountErrors } from '../../src/platforms/telegram/account-driver.ts';
import { Fakes, flush, testClock, type TestClock } from './harness.ts';

export const PROFILE: Profile = { platformUserId: '777000', displayName: 'Ada Lovelace', username: 'ada' };
export const PASSWORD = 'correct horse battery staple';

// The out-of-band password store the supervisor keeps: checkPassword reads it, nothing else sees it.
// (A scripted HANG for 'checkPassword' keeps the check in flight.)
export const makeVault = () => new Map<string, string>();

/** The account machine in Telegram's words (as the Telegram adapter builds it). */
export const machine = accountMachine(accountErrors);

export type AccountEvent = LifecycleEvent | { type: 'CODE'; code: string } | { type: 'RESEND' } | { type: 'RECOVER' } | { type: 'PASSWORD' } | { type: 'QR_SCANNED' };

export const accountImpl = (fakes: Fakes, vault = makeVault()) =>
  machine.provide({
    actors: {
      connect: fakes.promise<ConnectOutput, StepInput>('connect'),
      sendCode: fakes.promise<SendCodeOutput, StepInput>('sendCode'),
      resendCode: fakes.promise<SendCodeOutput, StepInput>('resendCode'),
      recoverPassword: fakes.promise<CheckPasswordOutput, StepInput>('recoverPassword'),
      signIn: fakes.promise<SignInOutput, SignInInput>('signIn'),
      checkPassword: fromPromise<CheckPasswordOutput, StepInput>(async ({ input }) => {
        (fakes.calls.checkPassword ??= []).push(input);
        const scripted = fakes.take('checkPassword');
        if (scripted !== undefined && 'hang' in scripted) return new Promise<CheckPasswordOutput>(() => {});
        if (vault.get(input.connectionId) !== PASSWORD) {
          throw { code: 'TG_PASSWORD_INVALID', message: 'the 2FA password is wrong', category: 'rejected' };
        }
        return { profile: PROFILE };
      }),
      exportQr: fakes.promise<ExportQrOutput, StepInput>('exportQr'),
      logOut: fakes.promise<void, StepInput>('logOut'),
      watch: fakes.watch<AccountEvent, StepInput>(),
    },
  });

export interface Run {
  actor: ReturnType<typeof createActor<ReturnType<typeof accountImpl>>>;
  fakes: Fakes;
  clock: TestClock;
  vault: Map<string, string>;
  statuses: string[];
  jsons: string[];
  status(): string;
  value(): unknown;
  ctx(): any;
}

export const startAccount = async (
  input: Partial<AccountInput> = {},
  opts: { fakes?: Fakes; clock?: TestClock; vault?: Map<string, string>; snapshot?: Snapshot<unknown>; inspect?: (e: InspectionEvent) => void } = {},
): Promise<Run> => {
  const fakes = opts.fakes ?? new Fakes();
  const clock = opts.clock ?? testClock();
  const vault = opts.vault ?? makeVault();
  const fullInput: AccountInput = { connectionId: `acc-${Math.random().toString(36).slice(2)}`, login: 'phone', ...input };
  const actor = createActor(accountImpl(fakes, vault), {
    input: fullInput,
    clock,
    ...(opts.snapshot ? { snapshot: opts.snapshot } : {}),
    ...(opts.inspect ? { inspect: opts.inspect } : {}),
  });
  const statuses: string[] = [];
  const jsons: string[] = [];
  actor.subscribe((s) => {
    const status = statusOf(s);
    if (statuses.at(-1) !== status) statuses.push(status);
    jsons.push(JSON.stringify(s));
    jsons.push(JSON.stringify(actor.getPersistedSnapshot()));
  });
  actor.start();
  await flush();
  return {
    actor, fakes, clock, vault, statuses, jsons,
    status: () => statusOf(actor.getSnapshot()),
    value: () => actor.getSnapshot().value,
    ctx: () => actor.getSnapshot().context,
  };
};

// Advances simulated time and lets the fakes answer.
export const advance = async (clock: TestClock, ms: number): Promise<void> => {
  clock.increment(ms);
  await flush();
};

export const send = async (run: Run, event: AccountEvent): Promise<void> => {
  run.actor.send(event);
  await flush();
};
