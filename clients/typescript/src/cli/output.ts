import { ApiError, NetworkError } from '../errors.ts';
import { LoginError } from '../login.ts';
import { ConfigRefused } from './config.ts';

export interface Output {
  json: boolean;
  /** One result: the JSON document with --json, else the human text. */
  result(data: unknown, human: () => string): void;
  /** Progress and hints for a person: stderr, never with --json. */
  note(text: string): void;
  /** A state change a script may wait for (the events socket is open): stderr, as a JSON line with --json. */
  status(state: Record<string, unknown>, human: string): void;
}

export function makeOutput(json: boolean, stdout: NodeJS.WritableStream = process.stdout, stderr: NodeJS.WritableStream = process.stderr): Output {
  return {
    json,
    result(data, human) {
      stdout.write(json ? `${JSON.stringify(data)}\n` : `${human()}\n`);
    },
    note(text) {
      if (!json) stderr.write(`${text}\n`);
    },
    status(state, human) {
      stderr.write(json ? `${JSON.stringify(state)}\n` : `${human}\n`);
    },
  };
}

/** Rows as aligned columns. */
export function table(rows: Array<Record<string, unknown>>, columns: string[]): string {
  if (rows.length === 0) return '(none)';
  const cells = rows.map((r) => columns.map((c) => (r[c] === undefined || r[c] === null ? '' : String(r[c]))));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = (values: string[]) => values.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(columns.map((c) => c.toUpperCase())), ...cells.map(line)].join('\n');
}

/** Exit codes: 1 the service refused or could not be reached, 2 the command or its configuration is wrong. */
export function reportError(err: unknown, json: boolean, stderr: NodeJS.WritableStream = process.stderr): number {
  if (err instanceof ApiError) {
    const body = { code: err.code, message: err.message, status: err.status, ...(err.retryAfter !== undefined && { retryAfter: err.retryAfter }), ...(err.details && { details: err.details }) };
    if (json) stderr.write(`${JSON.stringify({ error: body })}\n`);
    else {
      const retry = err.retryAfter !== undefined ? ` (retry after ${err.retryAfter} s)` : '';
      const details = (err.details ?? []).map((d) => `\n  - ${d.field ? `${d.field}: ` : ''}${d.message ?? JSON.stringify(d)}`).join('');
      stderr.write(`error: ${err.code} (HTTP ${err.status}): ${err.message}${retry}${details}\n`);
    }
    return 1;
  }
  if (err instanceof LoginError) {
    if (json) stderr.write(`${JSON.stringify({ error: { code: err.code, message: err.message } })}\n`);
    else stderr.write(`error: ${err.code}: ${err.message}\n`);
    return 1;
  }
  const code = err instanceof NetworkError ? 'NETWORK_ERROR' : err instanceof ConfigRefused ? 'CONFIG_REFUSED' : 'CLI_ERROR';
  const message = err instanceof Error ? err.message : String(err);
  if (json) stderr.write(`${JSON.stringify({ error: { code, message } })}\n`);
  else stderr.write(`error: ${message}\n`);
  return err instanceof NetworkError ? 1 : 2;
}
