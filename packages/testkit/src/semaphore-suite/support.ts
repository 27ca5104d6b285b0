import { type LockProvider, type Semaphore, semaphore } from '@baton/core';
import type { SuiteContext } from '../lock-suite/context.js';
import type { SemaphoreSuiteOptions } from './types.js';

/** The semaphore under test, on a name unique to the test. */
export function semaphoreFor(
  ctx: SuiteContext,
  options: SemaphoreSuiteOptions,
  limit: number,
  name = 'sem',
): Semaphore {
  const make =
    options.semaphore ??
    ((provider: LockProvider, n: string, l: number) => semaphore(provider, n, { limit: l }));
  return make(ctx.harness.provider, ctx.key(name), limit);
}

/** The error code (and config field) of a rejection, or `undefined` when it resolved. */
export async function failureOf(
  promise: Promise<unknown>,
): Promise<{ code: string; field?: string } | undefined> {
  return promise.then(
    () => undefined,
    (error: unknown) => {
      const e = error as { code?: unknown; field?: unknown } | undefined;
      const code = typeof e?.code === 'string' ? e.code : String(error);
      return typeof e?.field === 'string' ? { code, field: e.field } : { code };
    },
  );
}
