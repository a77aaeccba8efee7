// The seam between the emulator process (tests/emulator/index.ts, main.ts, the control server) and
// each non-Telegram platform emulator (tests/emulator/<platform>/). Every platform emulator is started
// with the shared clock and the app credentials, serves its own HTTP listeners (API, OAuth, upload),
// and answers its control calls (EMULATOR.md, "The other platforms": `/<platform>/...` on the one
// control server). Nothing here is imported by src/.

/** Domain time shared by every platform emulator: token expiry, quotas, 24-hour windows. */
export interface EmulatorClock {
  now(): number;
  /** `POST /clock {advanceS}` moves every platform's time at once. */
  advance(seconds: number): void;
}

export const realClock = (): EmulatorClock => {
  let offsetMs = 0;
  return { now: () => Date.now() + offsetMs, advance: (s) => { offsetMs += s * 1000; } };
};

/** App credentials the emulators accept (the ready line announces them under `apps`). */
export interface EmulatorApps {
  meta: { appId: string; appSecret: string; verifyToken: string };
  google: { clientId: string; clientSecret: string };
  tiktok: { clientKey: string; clientSecret: string };
}

export type PlatformName = 'instagram' | 'threads' | 'whatsapp' | 'youtube' | 'tiktok';

/** `POST /faults {type, target: '<platform>', count?, seconds?}` for these platforms. */
export interface PlatformFault {
  type: 'http-5xx' | 'latency' | 'rate-limit';
  count?: number;
  seconds?: number;
}

export interface ControlAnswer { status: number; body: unknown }

export interface PlatformEmulator {
  name: PlatformName;
  /** Addresses as announced in the ready line, e.g. `{ api, oauth }` or `{ api, upload, oauth }`. */
  urls: Record<string, string>;
  /**
   * A control call under `/<platform>/…`; `path` is what follows the prefix (`/accounts`, `/consent`, …).
   * Undefined when the path is not one of this platform's (the control server answers 404).
   */
  control(method: string, path: string, query: URLSearchParams, body: unknown): Promise<ControlAnswer | undefined>;
  fault(f: PlatformFault): void;
  reset(): void;
  stop(): Promise<void>;
}

export interface PlatformEmulatorOptions {
  host?: string;
  clock: EmulatorClock;
  apps: EmulatorApps;
}

/** A control call a platform refuses: 400 malformed, 404 unknown account, 409 conflict, 422 refused. */
export class PlatformControlError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = 'PlatformControlError';
  }
}

export type PlatformStarter = (opts: PlatformEmulatorOptions) => Promise<PlatformEmulator>;
