import type { ConfigWarning } from '@baton/core';
import { redact } from '@baton/core';
import { classifyError, describeError, hintFor } from './classify-errors.js';

/** Writes `value` as one JSON document on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, jsonReplacer, 2)}\n`);
}

/** Writes lines on stdout. */
export function printLines(...lines: string[]): void {
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** Writes a message on stderr (warnings and notes that must not mix with a command's output). */
export function note(message: string): void {
  process.stderr.write(`${redact(message)}\n`);
}

/**
 * Writes a configuration warning on stderr: `baton: warning: <message>`, or with `--json` one JSON object
 * `{"warning": {field, message}}` per line. Secrets are masked.
 */
export function warn(warning: ConfigWarning, json: boolean): void {
  const message = redact(warning.message);
  process.stderr.write(
    json
      ? `${JSON.stringify({ warning: { field: warning.field, message } })}\n`
      : `baton: warning: ${message}\n`,
  );
}

/** Renders rows as a left-aligned text table with a header. */
export function table(rows: ReadonlyArray<Record<string, unknown>>, columns: readonly string[]): string {
  const cells = rows.map((row) => columns.map((c) => cell(row[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i]!.length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => (i === values.length - 1 ? v : v.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(columns.map((c) => c.toUpperCase())), ...cells.map(line)].join('\n');
}

function cell(value: unknown): string {
  if (value === null || value === undefined) return '-';
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

function jsonReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

/**
 * Reports a failed command on stderr: `baton: <message>` (with causes), or with `--json` one JSON object
 * `{"error": {code, exitCode, message, field}}`. Returns the exit code. Secrets are masked (`redact()`).
 */
export function reportError(error: unknown, json: boolean): number {
  const { exitCode, code, field } = classifyError(error);
  const message = redact(describeError(error));
  if (json) {
    process.stderr.write(
      `${JSON.stringify({ error: { code, exitCode, message, ...(field ? { field } : {}) } })}\n`,
    );
  } else {
    process.stderr.write(`baton: ${message}\n`);
    const hint = hintFor(error);
    if (hint) process.stderr.write(`hint: ${hint}\n`);
    if (code === 'INTERNAL' && process.env.BATON_DEBUG && error instanceof Error && error.stack) {
      process.stderr.write(`${redact(error.stack)}\n`);
    }
  }
  return exitCode;
}
