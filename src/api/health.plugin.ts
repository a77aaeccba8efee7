import type { Plugin } from '@hapi/hapi';
import Joi from 'joi';
import { metrics } from '../observability/metrics.ts';
import { redactText } from '../observability/redact.ts';

export type ReadinessCheck = () => Promise<void>;
export interface CheckResult { ok: boolean; latencyMs: number; error?: string }
export interface HealthOptions {
  /** Readiness checks by name (postgres, redis, rabbitmq, vault, supervisor). */
  checks: Record<string, ReadinessCheck>;
  /** Per check; a load balancer probes every few seconds, so a hung dependency must not hang the probe. */
  timeoutMs?: number;
}

async function run(check: ReadinessCheck, timeoutMs: number): Promise<CheckResult> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const latency = () => Math.round((performance.now() - started) * 10) / 10;
  try {
    await Promise.race([
      Promise.resolve().then(check),
      new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs); }),
    ]);
    return { ok: true, latencyMs: latency() };
  } catch (err) {
    // Driver errors quote connection strings; the answer is public (no auth), so scrub and cap it.
    const text = err instanceof Error ? err.message : String(err);
    return { ok: false, latencyMs: latency(), error: redactText(text).slice(0, 200) || 'check failed' };
  } finally {
    clearTimeout(timer);
  }
}

const checkSchema = Joi.object({ ok: Joi.boolean(), latencyMs: Joi.number(), error: Joi.string() }).label('ReadinessCheck');
const checksSchema = Joi.object().pattern(Joi.string(), checkSchema).label('ReadinessChecks')
  .description('one entry per dependency (postgres, redis, rabbitmq, vault, supervisor)');
// Probes: out of the info log stream and the rate limits, and documented as needing no token.
const quiet = { requestLog: { level: 'debug' }, rateLimit: false, 'hapi-swagger': { security: [] } } as const;

export const healthPlugin: Plugin<HealthOptions> = {
  name: 'integration-health',
  register(server, { checks, timeoutMs = 2_000 }) {
    server.route({
      method: 'GET', path: '/health/live',
      options: {
        auth: false, plugins: quiet, tags: ['api', 'service'],
        description: 'Liveness: 200 while the process runs',
        response: { status: { 200: Joi.object({ status: Joi.valid('ok').label('LiveStatus') }).label('Live') } },
      },
      handler: () => ({ status: 'ok' }),
    });

    server.route({
      method: 'GET', path: '/health/ready',
      options: {
        auth: false, plugins: quiet, tags: ['api', 'service'],
        description: 'Readiness: every dependency check, run in parallel with a 2 s timeout each; 503 names the failing one',
        response: {
          status: {
            200: Joi.object({ status: Joi.valid('ok').label('ReadyStatus'), checks: checksSchema }).label('Ready'),
            503: Joi.object({ status: Joi.valid('unavailable').label('NotReadyStatus'), checks: checksSchema }).label('NotReady'),
          },
        },
      },
      handler: async (_request, h) => {
        const names = Object.keys(checks);
        const results = await Promise.all(names.map((name) => run(checks[name]!, timeoutMs)));
        const out: Record<string, CheckResult> = {};
        names.forEach((name, i) => {
          out[name] = results[i]!;
          metrics.readiness.set({ check: name }, results[i]!.ok ? 1 : 0);
        });
        const ok = results.every((r) => r.ok);
        return h.response({ status: ok ? 'ok' : 'unavailable', checks: out }).code(ok ? 200 : 503);
      },
    });
  },
};
