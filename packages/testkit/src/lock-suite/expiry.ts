import { aborted, check, checkEqual, defineCase, delay, eventually } from './context.js';
import type { LockHarnessFactory, LockSuiteOptions, TestFn } from './types.js';

async function acquireWithin(
  session: { tryAcquire(key: string): Promise<unknown> },
  key: string,
  timeoutMs: number,
  intervalMs: number,
): Promise<number> {
  const started = performance.now();
  await eventually(
    async () => ((await session.tryAcquire(key)) ? true : undefined),
    timeoutMs,
    `acquire ${key}`,
    intervalMs,
  );
  return performance.now() - started;
}

/** Expiry: a crashed holder's key becomes available, but not early. */
export function expiryTests(test: TestFn, factory: LockHarnessFactory, options: LockSuiteOptions): void {
  defineCase(test, factory, options, 'expiry: a crashed holder is not displaced immediately', async (ctx) => {
    const [a, b] = [await ctx.open({ lockDelayMs: 0 }), await ctx.open()];
    const key = ctx.key();
    check(await a.tryAcquire(key), 'acquire');
    await ctx.harness.crash(a);
    checkEqual(await b.tryAcquire(key), null, 'right after the crash the key is still held');
    await delay(Math.min(ctx.ttlMs / 4, 200));
    checkEqual(await b.tryAcquire(key), null, 'well within the TTL the key is still held');
  });

  defineCase(
    test,
    factory,
    options,
    'expiry: after a crash another session gets the key within the bound',
    async (ctx) => {
      const [a, b] = [await ctx.open({ lockDelayMs: 0 }), await ctx.open()];
      const key = ctx.key();
      check(await a.tryAcquire(key), 'acquire');
      await ctx.harness.crash(a);
      const waited = await acquireWithin(
        b,
        key,
        ctx.options.expiryBoundMs * 2 + 3_000,
        ctx.options.granularityMs,
      );
      check(
        waited >= ctx.ttlMs * 0.5,
        `takeover after ${Math.round(waited)} ms is too early for TTL ${ctx.ttlMs} ms`,
      );
    },
  );

  defineCase(
    test,
    factory,
    options,
    'expiry: a live session keeps its lease well past its TTL',
    async (ctx) => {
      const [a, b] = [await ctx.open(), await ctx.open()];
      const key = ctx.key();
      const lease = await a.tryAcquire(key);
      check(lease, 'acquire');
      await delay(ctx.ttlMs * 2.5);
      check(!lease.signal.aborted, 'lease still held after 2.5 TTLs of renewals');
      checkEqual(await b.tryAcquire(key), null, 'others still get null');
    },
  );
}

/** Loss: when the session can no longer be renewed, every lease's signal aborts. */
export function leaseLostTests(test: TestFn, factory: LockHarnessFactory, options: LockSuiteOptions): void {
  defineCase(
    test,
    factory,
    options,
    'lease lost: signals abort when the session cannot be renewed',
    async (ctx) => {
      const a = await ctx.open();
      const l1 = await a.tryAcquire(ctx.key('x'));
      const l2 = await a.tryAcquire(ctx.key('y'));
      check(l1 && l2, 'acquire two keys');
      const restore = await ctx.harness.breakTransport();
      try {
        const bound = ctx.ttlMs * 2 + 5_000;
        const reason = (await aborted(l1.signal, bound, 'lease signal')) as { code?: string };
        checkEqual(reason.code, 'LEASE_LOST', 'lease abort reason');
        await aborted(l2.signal, 1_000, 'second lease signal');
        const sessionReason = (await aborted(a.signal, 1_000, 'session signal')) as { code?: string };
        checkEqual(sessionReason.code, 'SESSION_LOST', 'session abort reason');
      } finally {
        await restore();
      }
    },
  );

  defineCase(
    test,
    factory,
    options,
    'lease lost: the holder gives up no later than TTL after its last renewal',
    async (ctx) => {
      const a = await ctx.open();
      const lease = await a.tryAcquire(ctx.key());
      check(lease, 'acquire');
      const restore = await ctx.harness.breakTransport();
      const started = performance.now();
      try {
        await aborted(lease.signal, ctx.ttlMs * 2 + 5_000, 'lease signal');
        const took = performance.now() - started;
        check(
          took <= ctx.ttlMs + ctx.options.granularityMs + 1_500,
          `lease believed held ${Math.round(took)} ms after renewals stopped working (TTL ${ctx.ttlMs} ms)`,
        );
      } finally {
        await restore();
      }
    },
  );

  defineCase(
    test,
    factory,
    options,
    'lease lost: a lost session refuses new acquisitions with a typed error',
    async (ctx) => {
      const a = await ctx.open();
      const restore = await ctx.harness.breakTransport();
      try {
        await aborted(a.signal, ctx.ttlMs * 2 + 5_000, 'session signal');
      } finally {
        await restore();
      }
      const error = (await a.tryAcquire(ctx.key()).then(
        () => undefined,
        (e: unknown) => e,
      )) as { code?: string } | undefined;
      check(error, 'tryAcquire on a lost session must reject');
      checkEqual(error.code, 'SESSION_LOST', 'error code');
    },
  );
}

/** Destroy: releases everything cleanly (no lock-delay) and closes the session. */
export function destroyTests(test: TestFn, factory: LockHarnessFactory, options: LockSuiteOptions): void {
  defineCase(
    test,
    factory,
    options,
    'destroy: releases every lease so others get them at once',
    async (ctx) => {
      const a = await ctx.open({ lockDelayMs: ctx.options.lockDelayMs ?? 0 });
      const b = await ctx.open();
      const keys = [ctx.key('a'), ctx.key('b'), ctx.key('c')];
      const leases = await Promise.all(keys.map((k) => a.tryAcquire(k)));
      check(
        leases.every((l) => l),
        'acquire three keys',
      );
      await a.destroy();
      check(
        leases.every((l) => l?.signal.aborted),
        'every lease signal aborted',
      );
      for (const key of keys) check(await b.tryAcquire(key), `key ${key} free right after destroy`);
    },
  );

  defineCase(test, factory, options, 'destroy: is idempotent and closes the session', async (ctx) => {
    const a = await ctx.open();
    await Promise.all([a.destroy(), a.destroy()]);
    await a.destroy();
    check(a.signal.aborted, 'session signal aborted');
    const error = (await a.tryAcquire(ctx.key()).then(
      () => undefined,
      (e: unknown) => e,
    )) as { code?: string } | undefined;
    checkEqual(error?.code, 'CLOSED', 'tryAcquire after destroy');
  });
}

/** Lock-delay after a lost session, and lockAtLeastFor after an early release. */
export function holdTests(test: TestFn, factory: LockHarnessFactory, options: LockSuiteOptions): void {
  const lockDelayMs = options.lockDelayMs ?? 0;
  if (lockDelayMs > 0) {
    defineCase(
      test,
      factory,
      options,
      'lock-delay: blocks new holders for a while after a crash',
      async (ctx) => {
        if (!ctx.harness.provider.capabilities.lockDelay) return;
        const [a, b] = [await ctx.open({ lockDelayMs }), await ctx.open()];
        const key = ctx.key();
        check(await a.tryAcquire(key), 'acquire');
        // The earliest the server can have freed the key, as this client can know it: the start of the last
        // probe that still saw it held (the server freed it after that probe's read).
        let freedNotBefore = performance.now();
        await ctx.harness.crash(a);
        await eventually(
          async () => {
            const probedAt = performance.now();
            if ((await ctx.harness.provider.getHolder(key)) === null) return true;
            freedNotBefore = probedAt;
            return undefined;
          },
          ctx.options.expiryBoundMs * 2 + 3_000,
          'the crashed session to be invalidated',
        );
        checkEqual(await b.tryAcquire(key), null, 'acquire during lock-delay');
        const waited = await acquireWithin(b, key, lockDelayMs * 3 + 3_000, ctx.options.granularityMs);
        check(
          performance.now() - freedNotBefore >= lockDelayMs - ctx.options.granularityMs * 2,
          `acquired ${Math.round(waited)} ms after invalidation, before the ${lockDelayMs} ms lock-delay`,
        );
      },
    );

    defineCase(test, factory, options, 'lock-delay: does not apply after a clean release', async (ctx) => {
      const [a, b] = [await ctx.open({ lockDelayMs }), await ctx.open()];
      const key = ctx.key();
      const lease = await a.tryAcquire(key);
      check(lease, 'acquire');
      await lease.release();
      check(await b.tryAcquire(key), 'acquire right after a clean release');
    });
  }

  defineCase(
    test,
    factory,
    options,
    'lockAtLeastFor: an early release keeps the key unavailable',
    async (ctx) => {
      const [a, b] = [await ctx.open(), await ctx.open()];
      const key = ctx.key();
      const holdMs = Math.max(400, ctx.options.granularityMs * 8);
      // The minimum runs from the grant, which the server makes after this request is sent, not from the
      // moment the answer arrives (a slow answer would shorten what the check measures).
      const requestedAt = performance.now();
      const lease = await a.tryAcquire(key, { lockAtLeastForMs: holdMs });
      check(lease, 'acquire');
      await lease.release();
      checkEqual(await b.tryAcquire(key), null, 'acquire right after an early release');
      await acquireWithin(b, key, holdMs * 4 + ctx.options.expiryBoundMs + 3_000, ctx.options.granularityMs);
      check(
        performance.now() - requestedAt >= holdMs - ctx.options.granularityMs,
        'acquired before lockAtLeastFor elapsed',
      );
    },
  );

  defineCase(
    test,
    factory,
    options,
    'lockAtLeastFor: a release after the minimum frees the key at once',
    async (ctx) => {
      const [a, b] = [await ctx.open(), await ctx.open()];
      const key = ctx.key();
      const lease = await a.tryAcquire(key, { lockAtLeastForMs: 100 });
      check(lease, 'acquire');
      await delay(100 + ctx.options.granularityMs * 2);
      await lease.release();
      check(await b.tryAcquire(key), 'acquire right after a late release');
    },
  );
}
