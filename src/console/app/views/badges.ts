import { h } from '../dom.ts';
import type { ConnectionStatus, MessageStatus } from '../types.ts';

// Status words are shown as they are in the API, so what an operator reads matches the logs.
export const statusBadge = (status: ConnectionStatus): HTMLSpanElement =>
  h('span', { class: `badge badge--${badgeTone(status)}`, 'data-status': status }, status);

export const messageBadge = (status: MessageStatus): HTMLSpanElement =>
  h('span', { class: `badge badge--${messageTone[status] ?? 'muted'}`, 'data-status': status }, status);

const badgeTone = (s: ConnectionStatus): string =>
  s === 'active' ? 'ok' : s === 'error' ? 'bad' : s === 'stopped' ? 'muted' : s.startsWith('awaiting') ? 'wait' : 'busy';

const messageTone: Record<string, string> = { queued: 'muted', sending: 'busy', sent: 'ok', failed: 'bad', cancelled: 'muted' };
