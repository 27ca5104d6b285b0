import { MAX_ERROR_MESSAGE_LENGTH, MAX_TASK_ATTEMPTS } from '@baton/core';
import { type TestDatabase, testDatabase } from '@baton/test-servers/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PostgresTaskSource } from '../src/index.js';
import { freshSource } from './support.js';

let db: TestDatabase;
let source: PostgresTaskSource;
let close: () => Promise<void>;
beforeAll(async () => {
  db = await testDatabase();
  ({ source, close } = await freshSource(db));
});
afterAll(async () => {
  await close?.();
  await db?.close();
});

/** The error a promise rejects with (fails the test when it resolves). */
async function rejection(promise: Promise<unknown>): Promise<{ code?: string; message: string }> {
  const outcome = await promise.then(
    (value) => ({ resolved: value }),
    (error: unknown) => ({ error }),
  );
  if (!('error' in outcome)) throw new Error(`expected a rejection, got ${JSON.stringify(outcome)}`);
  return outcome.error as { code?: string; message: string };
}

/** Input the database would refuse (or mangle): the source refuses it first, naming the value at fault. */
const refused: Array<[string, () => Promise<unknown>, RegExp]> = [
  [
    'a NUL character in a payload string (jsonb: SQLSTATE 22P05)',
    () => source.enqueue({ kind: 'nul', payload: { note: 'a\u0000b' } }),
    /task #0: payload contains a NUL character/,
  ],
  [
    'a NUL character in a payload key',
    () => source.enqueue([{ kind: 'ok' }, { kind: 'nul', payload: { 'k\u0000': 1 } }]),
    /task #1: payload contains a NUL character/,
  ],
  [
    'maxAttempts beyond 2^31 − 1 (the integer column)',
    () => source.enqueue({ kind: 'big', maxAttempts: MAX_TASK_ATTEMPTS + 1 }),
    /maxAttempts must be a whole number from 1 to 2147483647/,
  ],
  [
    'a delay beyond 100 years (would leave the timestamptz range for large values)',
    () => source.enqueue({ kind: 'far', delayMs: 3_600_000 * 1_000_000_000 }),
    /delayMs must be a number of milliseconds from 0 to/,
  ],
];

describe('PostgreSQL source: hostile input', () => {
  it.each(refused)('refuses %s with INVALID_ARGUMENT before the database sees it', async (_w, run, re) => {
    const error = await rejection(run());
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.message).toMatch(re);
    expect(error.message).not.toMatch(/SQLSTATE/);
  });

  it('keeps an escaped backslash before u0000 (text, not a NUL) as it is', async () => {
    const [id] = await source.enqueue({ kind: 'text', payload: { note: '\\u0000' } });
    expect((await source.get(id!))?.payload).toEqual({ note: '\\u0000' });
  });

  it('refuses a result with a NUL character, naming the result', async () => {
    const [id] = await source.enqueue({ kind: 'r' });
    expect((await source.claim(id!, 1, 'w')).claimed).toBe(true);
    const error = await rejection(source.complete(id!, 1, { out: '\u0000' }));
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.message).toMatch(/complete\(\): result contains a NUL character/);
    expect((await source.get(id!))?.status).toBe('running');
  });

  it('stores a 5 MB failure message cut to MAX_ERROR_MESSAGE_LENGTH characters', async () => {
    const [id] = await source.enqueue({ kind: 'huge' });
    expect((await source.claim(id!, 1, 'w')).claimed).toBe(true);
    await source.fail(id!, 1, { message: `boom:${'x'.repeat(5 * 1024 * 1024)}` });
    const { lastError } = (await source.get(id!))!;
    expect(lastError!.length).toBeLessThanOrEqual(MAX_ERROR_MESSAGE_LENGTH);
    expect(lastError).toMatch(/^boom:x+… \[truncated: \d+ characters in all\]$/);
  });
});
