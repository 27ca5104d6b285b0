import { randomUUID } from 'node:crypto';
import type { LockSession, SessionOptions } from '@baton/core';
import type { LockHarness, LockHarnessFactory, LockSuiteOptions, TestFn } from './types.js';

/** Per-test helpers: a fresh harness, unique keys, and sessions that are always cleaned up. */
export interface SuiteContext {
  harness: LockHarness;
  /** A key unique to this test. */
  key(name?: string): string;
  /** Opens a session with the suite's defaults (plus overrides) and destroys it after the test. */
  open(overrides?: SessionOptions): Promise<LockSession>;
  ttlMs: number;
  options: Required<Pick<LockSuiteOptions, 'expiryBoundMs' | 'granularityMs'>> & LockSuiteOptions;
}

/** Registers one test that gets a fresh {@link SuiteContext}. */
export function defineCase(
  test: TestFn,
  factory: LockHarnessFactory,
  suiteOptions: LockSuiteOptions,
  name: string,
  body: (ctx: SuiteContext) => Promise<void>,
  timeoutMs?: number,
): void {
  const options = { granularityMs: 50, ...suiteOptions };
  const budget = timeoutMs ?? Math.max(20_000, options.expiryBoundMs * 6 + 10_000);
  test(
    name,
    async () => {
      const harness = await factory();
      const sessions: LockSession[] = [];
      const prefix = `suite-${randomUUID().slice(0, 8)}`;
      const ctx: SuiteContext = {
        harness,
        key: (n = 'k') => `${prefix}/${n}`,
        open: async (overrides = {}) => {
          const session = await harness.provider.openSession({ ...harness.sessionOptions, ...overrides });
          sessions.push(session);
          return session;
        },
        ttlMs: harness.sessionOptions.ttlMs ?? 15_000,
        options,
      };
      try {
        await body(ctx);
      } finally {
        await Promise.allSettled(sessions.map((s) => s.destroy()));
        await harness.close();
      }
    },
    budget,
  );
}

/** Polls `probe` until it returns a value other than `undefined`, or throws after `timeoutMs`. */
export async function eventually<T>(
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
  what: string,
  intervalMs = 20,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (performance.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`, { cause: lastError });
    }
    await delay(intervalMs);
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits until `signal` aborts, or throws after `timeoutMs`. */
export async function aborted(signal: AbortSignal, timeoutMs: number, what: string): Promise<unknown> {
  if (signal.aborted) return signal.reason;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)),
      timeoutMs,
    );
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve(signal.reason);
      },
      { once: true },
    );
  });
}

/** Minimal assertion helpers so the suite runs under any test runner. */
export function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`conformance: ${message}`);
}

export function checkEqual<T>(actual: T, expected: T, message: string): void {
  if (!Object.is(actual, expected)) {
    throw new Error(`conformance: ${message}: expected ${String(expected)}, got ${String(actual)}`);
  }
}

/**
 * Marks a pending operation that a case may leave behind when one of its checks fails first (the session's
 * destruction in cleanup then rejects it): the rejection is observed here, so a failing case reports its own
 * check rather than an unhandled rejection. Whoever awaits the returned promise still sees the outcome.
 */
export function abandonable<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}

export async function rejects(promise: Promise<unknown>, message: string): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error(`conformance: ${message}: expected a rejection, but it resolved`);
}
