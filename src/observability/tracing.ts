// OpenTelemetry tracing, off unless OTEL_EXPORTER_OTLP_ENDPOINT is set. Off means no SDK module is
// even loaded: withSpan() calls its function directly and injectContext() writes nothing, so the
// send path pays one boolean check. On, NodeSDK exports over OTLP/HTTP and instruments http, hapi
// and winston (trace_id/span_id in log lines, which logger.ts maps to ECS trace.id/span.id).
//
// Instrumentation patches modules as they load, so startTracing() must run before @hapi/hapi and
// winston are imported: src/main.ts imports only this module statically and the app dynamically
// afterwards (no --import preload, so `npm start`, `tsx src/main.ts` and the Docker CMD stay as they
// are). @hapi/hapi is imported from ESM, which require-hooks cannot see: an import-in-the-middle
// loader hook is registered for the instrumented packages only (every other module loads untouched).
//
// The trace crosses the outbox: the accepting request's context is stored on the message row
// (traceCarrier() → messages.trace_context), the relay continues it and sends `traceparent` /
// `tracestate` as AMQP headers, the consumer continues from those (embedded mode: from the row).
// Span attributes carry ids, method names and outcomes only — never message text, phone numbers,
// tokens or arguments; a failure records its error code (or class name), never its message.
import { register } from 'node:module';
import {
  context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, INVALID_SPAN_CONTEXT,
  type Attributes, type Context, type Span,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import type { NodeSDK } from '@opentelemetry/sdk-node';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';

export { SpanKind };
export type { Context, Span };

export interface TracingOptions {
  /** service.name on every span; OTEL_SERVICE_NAME wins when set (the SDK's env resource) */
  serviceName: string;
  /** OTLP/HTTP base URL, e.g. http://otel-collector:4318; default OTEL_EXPORTER_OTLP_ENDPOINT */
  endpoint?: string;
  /** tests: export to this (e.g. InMemorySpanExporter) synchronously instead of OTLP; turns tracing on */
  exporter?: SpanExporter;
}

/** The W3C headers stored with a message row and sent as AMQP headers. */
export interface TraceCarrier { traceparent?: string; tracestate?: string }

const tracerName = 'integration-service';
const w3c = new W3CTraceContextPropagator();
const noopSpan = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);
// Query parameters whose values never reach a span: the events WebSocket takes its JWT as
// ?access_token= (browsers cannot set headers there).
const secretQueryParams = ['access_token', 'token', 'code', 'password', 'sig', 'Signature'];
// Probes and scrapes (every 10–15 s each) would bury real traffic in one-span traces.
const untracedPaths = /^\/(health\/|metrics$|docs|swagger|console|assets\/)/;

let sdk: NodeSDK | undefined;
let enabled = false;

export const tracingEnabled = (): boolean => enabled;

/** Starts the SDK if an endpoint (or a test exporter) is given; resolves whether tracing is on. */
export async function startTracing(o: TracingOptions): Promise<boolean> {
  if (sdk) return true;
  const endpoint = o.endpoint ?? process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (!o.exporter && !endpoint) return false;

  // Hook only the packages an instrumentation asks for (the message channel's include list); the
  // loader must know them before they are imported, hence the wait after start().
  const { createAddHookMessageChannel } = await import('import-in-the-middle');
  const hooks = createAddHookMessageChannel();
  register('import-in-the-middle/hook.mjs', import.meta.url, hooks.registerOptions);

  const [{ NodeSDK }, { BatchSpanProcessor, SimpleSpanProcessor }, { OTLPTraceExporter }, { HttpInstrumentation }, { HapiInstrumentation }, { WinstonInstrumentation }] = await Promise.all([
    import('@opentelemetry/sdk-node'),
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/instrumentation-http'),
    import('@opentelemetry/instrumentation-hapi'),
    import('@opentelemetry/instrumentation-winston'),
  ]);
  const processor = o.exporter
    ? new SimpleSpanProcessor(o.exporter)
    // Batches of ≤ 512 every 5 s, queue bound 2048 (SDK defaults, OTEL_BSP_* override): a collector
    // outage drops spans, never blocks or grows the daemon.
    : new BatchSpanProcessor(o.endpoint ? new OTLPTraceExporter({ url: `${o.endpoint.replace(/(?<!\/)\/+$/, '')}/v1/traces` }) : new OTLPTraceExporter());
  sdk = new NodeSDK({
    serviceName: process.env.OTEL_SERVICE_NAME || o.serviceName,
    spanProcessors: [processor],
    // Metrics stay on prom-client (/metrics) and logs on winston → ECS; the SDK would otherwise
    // default both to OTLP exporters.
    metricReaders: [],
    logRecordProcessors: [],
    textMapPropagator: w3c,
    instrumentations: [
      new HttpInstrumentation({
        redactedQueryParamsServer: secretQueryParams,
        redactedQueryParams: secretQueryParams,
        ignoreIncomingRequestHook: (req) => untracedPaths.test(req.url ?? ''),
        // Outgoing http (Vault, JWKS) only inside a trace; a background token renewal is not one.
        requireParentforOutgoingSpans: true,
      }),
      new HapiInstrumentation(),
      // Correlation only: the lines themselves go through winston's transports, not OTLP.
      new WinstonInstrumentation({ disableLogSending: true }),
    ],
  });
  sdk.start();
  await hooks.waitForAllMessagesAcknowledged();
  enabled = true;
  return true;
}

/** Flushes pending spans (≤ timeout of the exporter, 10 s by default) and stops the SDK. */
export async function shutdownTracing(): Promise<void> {
  const s = sdk;
  if (!s) return;
  sdk = undefined;
  enabled = false;
  await s.shutdown();
}

export interface SpanOptions {
  kind?: SpanKind;
  /** continue this context (e.g. extracted from a message) instead of the active one */
  parent?: Context;
  /** false: only as a child of an existing span — background calls (long polls, checks) make no traces */
  root?: boolean;
}

/**
 * Runs fn inside a new active span that ends when fn settles. On failure the span gets status
 * ERROR and `error.type` = the AppError code or the error's class name; the message is never
 * recorded (platform errors can quote a URL with a bot token in it).
 */
export async function withSpan<T>(name: string, attrs: Attributes, fn: (span: Span) => Promise<T>, o: SpanOptions = {}): Promise<T> {
  if (!enabled) return fn(noopSpan);
  const parent = o.parent ?? context.active();
  if (o.root === false && !trace.getSpan(parent)) return fn(noopSpan);
  const tracer = trace.getTracer(tracerName);
  return tracer.startActiveSpan(name, { attributes: attrs, kind: o.kind ?? SpanKind.INTERNAL }, parent, async (span) => {
    try {
      return await fn(span);
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR });
      span.setAttribute('error.type', errorType(err));
      throw err;
    } finally {
      span.end();
    }
  });
}

function errorType(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^[A-Z0-9_]{1,64}$/.test(code)) return code;
  return (err as Error | null)?.name || 'Error';
}

/** Writes traceparent/tracestate of ctx (default: the active context) into carrier; nothing when off. */
export function injectContext<C extends Record<string, unknown>>(carrier: C, ctx: Context = context.active()): C {
  if (enabled) w3c.inject(ctx, carrier, { set: (c, k, v) => { (c as Record<string, unknown>)[k] = v; } });
  return carrier;
}

/** The context carried by traceparent/tracestate in carrier (AMQP headers, a stored row); ROOT when none. */
export function extractContext(carrier: object | null | undefined): Context {
  if (!enabled || !carrier) return ROOT_CONTEXT;
  return w3c.extract(ROOT_CONTEXT, carrier, {
    keys: (c) => Object.keys(c),
    get: (c, k) => {
      const v = (c as Record<string, unknown>)[k];
      return typeof v === 'string' ? v : undefined;
    },
  });
}

/** The active context as the two W3C headers, for storing with a message row; undefined when off or outside a trace. */
export function traceCarrier(): TraceCarrier | undefined {
  if (!enabled || !trace.getSpan(context.active())) return undefined;
  const c = injectContext<TraceCarrier & Record<string, unknown>>({});
  return c.traceparent ? { traceparent: c.traceparent, ...(c.tracestate ? { tracestate: c.tracestate } : {}) } : undefined;
}
