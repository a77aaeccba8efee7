-- Tracing (src/observability/tracing.ts): the W3C trace context of the request that accepted a message,
-- {"traceparent": "00-…", "tracestate": "…"}, so the relay (broker mode) or the embedded consumer can
-- continue that trace when it publishes or sends the message, seconds or hours later. Null when tracing
-- was off at accept time; never holds anything but these two headers (≤ 55 + 512 bytes).
alter table messages add column trace_context jsonb;
