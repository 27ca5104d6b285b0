import { Election, type Leadership } from '@baton/core';
import { delay, type SuiteContext } from '../lock-suite/context.js';

/** An election on a key unique to the test. */
export function electionFor(ctx: SuiteContext, name = 'leader'): Election {
  return new Election(ctx.harness.provider, ctx.key(name));
}

/** The error code of a rejection, or `undefined` when it resolved. */
export async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  return promise.then(
    () => undefined,
    (error: unknown) => (error as { code?: string } | undefined)?.code ?? String(error),
  );
}

/** Resolves with the campaign's leadership and the time it was won. */
export async function timed(campaign: Promise<Leadership>): Promise<{ leadership: Leadership; at: number }> {
  const leadership = await campaign;
  return { leadership, at: performance.now() };
}

/** Abort signal that fires after `ms`, so a stuck campaign fails the test instead of hanging it. */
export function deadline(ms: number): AbortSignal {
  return AbortSignal.timeout(ms);
}

/** Polls a synchronous condition until it holds; throws after `timeoutMs`. */
export async function waitFor(probe: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!probe()) {
    if (performance.now() > deadline) throw new Error(`conformance: timed out waiting until ${what}`);
    await delay(10);
  }
}
