import Joi from 'joi';
import { AppError, registerErrorCodes } from '../errors.ts';
import type { ConnectionKind, Operation, PlatformAdapter, SendCapabilities } from './adapter.ts';

// The platforms this process speaks, by name: the one place the core looks an adapter up. Built
// once at start (src/platforms/index.ts lists them); registering an adapter registers its error codes.

export class Platforms {
  readonly #byName = new Map<string, PlatformAdapter>();

  constructor(adapters: PlatformAdapter[]) {
    for (const a of adapters) {
      if (this.#byName.has(a.name)) throw new Error(`platform ${a.name} registered twice`);
      registerErrorCodes(a.errorCodes);
      this.#byName.set(a.name, a);
    }
  }

  get all(): PlatformAdapter[] { return [...this.#byName.values()]; }
  get names(): string[] { return [...this.#byName.keys()]; }

  /** The adapter of a platform a row or a request names; NOT_FOUND-free: an unknown one is a 400. */
  get(name: string): PlatformAdapter {
    const a = this.#byName.get(name);
    if (!a) throw new AppError('VALIDATION_ERROR', `unknown platform ${name}`, { details: [{ path: 'platform', message: 'not a platform this service speaks' }] });
    return a;
  }

  kind(platform: string, kind: string): ConnectionKind {
    const k = this.get(platform).kinds.find((x) => x.kind === kind);
    if (!k) throw new AppError('VALIDATION_ERROR', `platform ${platform} has no connection kind ${kind}`);
    return k;
  }

  /** Undefined for a (platform, kind) this process does not run (a row written by a newer version). */
  sendCapabilities(platform: string, kind: string): SendCapabilities | undefined {
    return this.#byName.get(platform)?.kinds.find((x) => x.kind === kind)?.send;
  }

  /** Every kind name any platform declares (the list filter of the API). */
  kindNames(): string[] {
    return [...new Set(this.all.flatMap((a) => a.kinds.map((k) => k.kind)))];
  }

  /** Every (platform, kind) pair, for the SQL constraint on connections (platform_kinds). */
  pairs(): Array<{ platform: string; kind: string }> {
    return this.all.flatMap((a) => a.kinds.map((k) => ({ platform: a.name, kind: k.kind })));
  }

  /**
   * The body of POST /v1/connections: each adapter's schema, chosen by `platform` (the first adapter's
   * when it is left out, as v1 clients do), so validation errors name the fields of that platform.
   */
  createSchema(): Joi.Schema {
    const [first, ...rest] = this.all;
    if (!first) throw new Error('no platform registered');
    if (rest.length === 0) return first.createSchema.label('CreateConnection');
    let schema: Joi.Schema = first.createSchema;
    for (const a of rest.reverse()) {
      schema = Joi.alternatives().conditional('.platform', { is: a.name, then: a.createSchema, otherwise: schema });
    }
    return Joi.alternatives().conditional(Joi.object({ platform: Joi.valid(...this.names) }).unknown(), {
      then: schema,
      otherwise: Joi.object({ platform: Joi.string().valid(...this.names).required() }).unknown(),
    }).label('CreateConnection');
  }

  /** Platform error codes an operation may answer, merged into `{ status: "A; B" }` for the API docs. */
  documentedErrors(op: Operation): Record<number, string> {
    const out: Record<number, string[]> = {};
    for (const a of this.all) for (const [status, codes] of Object.entries(a.documentedErrors?.[op] ?? {})) (out[Number(status)] ??= []).push(...codes);
    return Object.fromEntries(Object.entries(out).map(([s, codes]) => [Number(s), codes.join('; ')]));
  }

  /** Adapters close their shared clients; drivers are disposed by the supervisor first. */
  async stop(): Promise<void> {
    await Promise.all(this.all.map((a) => a.stop?.()));
  }
}
