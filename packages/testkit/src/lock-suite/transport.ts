import { check, checkEqual, defineCase } from './context.js';
import type { LockHarnessFactory, LockSuiteOptions, TestFn } from './types.js';

function codeOf(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : undefined;
}

async function outcome(
  promise: Promise<unknown>,
  timeoutMs: number,
): Promise<{ value?: unknown; error?: unknown }> {
  const timer = new Promise<{ error: unknown }>((resolve) =>
    setTimeout(() => resolve({ error: new Error(`no answer within ${timeoutMs} ms`) }), timeoutMs),
  );
  return Promise.race([
    promise.then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    ),
    timer,
  ]);
}

const TRANSPORT_CODES = new Set(['UNAVAILABLE', 'TIMEOUT']);

/** Transport failures surface as typed, retryable errors; they are never reported as "not acquired". */
export function transportTests(test: TestFn, factory: LockHarnessFactory, options: LockSuiteOptions): void {
  defineCase(
    test,
    factory,
    options,
    'transport: tryAcquire rejects with a typed error, never null',
    async (ctx) => {
      const a = await ctx.open();
      const restore = await ctx.harness.breakTransport();
      try {
        const result = await outcome(a.tryAcquire(ctx.key()), 30_000);
        check(result.value !== null, 'a transport failure was reported as null ("not acquired")');
        check(result.error, 'tryAcquire must reject while the backend is unreachable');
        check(
          TRANSPORT_CODES.has(codeOf(result.error) ?? ''),
          `code ${codeOf(result.error)} is not UNAVAILABLE/TIMEOUT`,
        );
        check((result.error as Error).cause !== undefined, 'the client error is kept as cause');
      } finally {
        await restore();
      }
    },
  );

  defineCase(test, factory, options, 'transport: getHolder rejects with a typed error', async (ctx) => {
    const restore = await ctx.harness.breakTransport();
    try {
      const result = await outcome(ctx.harness.provider.getHolder(ctx.key()), 30_000);
      check(result.error, 'getHolder must reject while the backend is unreachable');
      check(TRANSPORT_CODES.has(codeOf(result.error) ?? ''), `code ${codeOf(result.error)}`);
    } finally {
      await restore();
    }
  });

  defineCase(test, factory, options, 'transport: openSession rejects with a typed error', async (ctx) => {
    const restore = await ctx.harness.breakTransport();
    try {
      const result = await outcome(ctx.open(), 30_000);
      check(result.error, 'openSession must reject while the backend is unreachable');
      check(TRANSPORT_CODES.has(codeOf(result.error) ?? ''), `code ${codeOf(result.error)}`);
    } finally {
      await restore();
    }
  });

  defineCase(test, factory, options, 'transport: works again once the backend is reachable', async (ctx) => {
    const restore = await ctx.harness.breakTransport();
    await outcome(ctx.harness.provider.getHolder(ctx.key()), 30_000);
    await restore();
    const session = await ctx.open();
    const lease = await session.tryAcquire(ctx.key());
    check(lease, 'acquire after the transport came back');
    checkEqual(await lease.release(), true, 'release after the transport came back');
  });
}
