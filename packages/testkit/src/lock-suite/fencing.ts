import { check, checkEqual, defineCase, eventually } from './context.js';
import type { LockHarnessFactory, LockSuiteOptions, TestFn } from './types.js';

/** Fencing tokens: strictly increasing per key across every acquisition by anyone. */
export function fencingTests(test: TestFn, factory: LockHarnessFactory, options: LockSuiteOptions): void {
  defineCase(
    test,
    factory,
    options,
    'fencing: the fence is a positive safe integer stored with the lock',
    async (ctx) => {
      const a = await ctx.open();
      const key = ctx.key();
      const lease = await a.tryAcquire(key);
      check(lease, 'acquire');
      check(
        Number.isSafeInteger(lease.fence) && lease.fence > 0,
        `fence ${lease.fence} must be a positive safe integer`,
      );
      const stored = await ctx.harness.inspect(key);
      checkEqual(stored?.fence, lease.fence, 'stored fence');
      const holder = await ctx.harness.provider.getHolder(key);
      checkEqual(holder?.fence, lease.fence, 'getHolder fence');
    },
  );

  defineCase(
    test,
    factory,
    options,
    'fencing: strictly increases across releases by different sessions',
    async (ctx) => {
      const sessions = [await ctx.open(), await ctx.open(), await ctx.open()];
      const key = ctx.key();
      let last = 0;
      for (let round = 0; round < 9; round++) {
        const lease = await sessions[round % 3]!.tryAcquire(key);
        check(lease, `round ${round} acquire`);
        check(lease.fence > last, `round ${round}: fence ${lease.fence} must exceed ${last}`);
        last = lease.fence;
        await lease.release();
      }
    },
  );

  defineCase(
    test,
    factory,
    options,
    'fencing: increases across re-acquisition by the same session',
    async (ctx) => {
      const a = await ctx.open();
      const key = ctx.key();
      const first = await a.tryAcquire(key);
      check(first, 'acquire');
      await first.release();
      const second = await a.tryAcquire(key);
      check(second, 're-acquire');
      check(second.fence > first.fence, `fence ${second.fence} must exceed ${first.fence}`);
    },
  );

  defineCase(test, factory, options, 'fencing: increases across expiry and takeover', async (ctx) => {
    const [a, b] = [await ctx.open({ lockDelayMs: 0 }), await ctx.open()];
    const key = ctx.key();
    const first = await a.tryAcquire(key);
    check(first, 'acquire');
    await ctx.harness.crash(a);
    const second = await eventually(
      async () => (await b.tryAcquire(key)) ?? undefined,
      ctx.options.expiryBoundMs * 2 + 3_000,
      'takeover',
      ctx.options.granularityMs,
    );
    check(second.fence > first.fence, `takeover fence ${second.fence} must exceed ${first.fence}`);
  });

  defineCase(
    test,
    factory,
    options,
    'fencing: does not depend on the key (fences of other keys interleave)',
    async (ctx) => {
      const a = await ctx.open();
      const [k1, k2] = [ctx.key('p'), ctx.key('q')];
      let last1 = 0;
      for (let i = 0; i < 4; i++) {
        const l1 = await a.tryAcquire(k1);
        const l2 = await a.tryAcquire(k2);
        check(l1 && l2, 'acquire both');
        check(l1.fence > last1, 'per-key fence increases while another key is busy');
        last1 = l1.fence;
        await Promise.all([l1.release(), l2.release()]);
      }
    },
  );

  if (!options.skipKeyDeletion) {
    defineCase(
      test,
      factory,
      options,
      'fencing: increases across deletion and re-creation of the key',
      async (ctx) => {
        if (!ctx.harness.deleteKey) return;
        const a = await ctx.open();
        const key = ctx.key();
        const first = await a.tryAcquire(key);
        check(first, 'acquire');
        await first.release();
        await ctx.harness.deleteKey(key);
        const second = await a.tryAcquire(key);
        check(second, 'acquire re-created key');
        check(
          second.fence > first.fence,
          `fence after re-creation ${second.fence} must exceed ${first.fence}`,
        );
      },
    );
  }
}
