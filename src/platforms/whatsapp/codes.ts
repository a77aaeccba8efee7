import type { AppError } from '../../errors.ts';
import { GraphApiError, graphAppError, graphVerdict, type GraphFailure, type GraphVerdict } from '../meta/graph.ts';

// WhatsApp Cloud API error codes (developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes)
// in the adapter's categories; the Graph-wide ones are in ../meta/graph.ts. The code itself stays in
// the error's message ("Graph code 131047") for whoever reads the message's error.

export function whatsappVerdict(f: GraphFailure): GraphVerdict | undefined {
  switch (f.code) {
    // Throughput: 80 messages/s per number by default (Cloud API "Throughput"); a second is enough.
    case 130429: return { code: 'PLATFORM_RATE_LIMITED', category: 'rate-limited-until', retryAfter: 1, scope: 'connection' };
    // Pair rate limit: about 1 message per 6 s to one customer (bursts borrow ahead); this chat waits.
    case 131056: return { code: 'PLATFORM_RATE_LIMITED', category: 'rate-limited-until', retryAfter: 6, scope: 'request' };
    // Spam rate limit: the number is sending too much that customers block; the whole number waits.
    case 131048: return { code: 'PLATFORM_RATE_LIMITED', category: 'rate-limited-until', retryAfter: 60, scope: 'connection' };
    // Re-engagement: free-form text more than 24 h after the customer's last message.
    case 131047: return { code: 'OUTSIDE_SERVICE_WINDOW', category: 'rejected' };
    // Something went wrong / service unavailable / server temporarily unavailable: transient.
    case 131000: case 131016: case 133004: return { code: 'PLATFORM_UNAVAILABLE', category: 'retry' };
    // Account locked, payment issue, number not registered: nothing sends until a person acts.
    case 131031: case 131042: case 133010: case 368: return { code: 'PLATFORM_REJECTED', category: 'fatal' };
    default: return undefined;
  }
}

/** A WhatsApp Graph failure as the core's error; `phase` says whether a send's outcome can be unknown. */
export function whatsappError(err: GraphApiError, phase: 'connect' | 'send' | 'read'): AppError {
  return graphAppError(err, graphVerdict(err.failure, whatsappVerdict, phase), 'WhatsApp');
}
