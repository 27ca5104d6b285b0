import { abandonable, check, checkEqual, defineCase, eventually } from '../lock-suite/context.js';
import type { LockHarnessFactory, TestFn } from '../lock-suite/types.js';
import { semaphoreFor } from './support.js';
import type { SemaphoreSuiteOptions } from './types.js';

/** A crashed holder's permit comes free through the backend's expiry, also for a waiter behind a lock-delay. */
export function semaphoreExpiryTests(
  test: TestFn,
  factory: LockHarnessFactory,
  options: SemaphoreSuiteOptions,
): void {
  defineCase(
    test,
    factory,
    options,
    "semaphore: a crashed holder's permit is free again within the expiry bound",
    async (ctx) => {
      const sem = semaphoreFor(ctx, options, 2);
      const a = await ctx.open({ lockDelayMs: 0 });
      const b = await ctx.open({ lockDelayMs: 0 });
      const c = await ctx.open({ lockDelayMs: 0 });
      const crashedPermit = await sem.tryAcquire(a);
      check(crashedPermit, 'first permit');
      check(await sem.tryAcquire(b), 'second permit');
      await ctx.harness.crash(a);
      checkEqual(
        await sem.tryAcquire(c),
        null,
        'tryAcquire right after the crash (the permit is still held)',
      );
      const started = performance.now();
      const permit = await eventually(
        async () => (await sem.tryAcquire(c)) ?? undefined,
        ctx.options.expiryBoundMs + ctx.options.granularityMs * 4 + 2_000,
        "the crashed holder's permit",
      );
      const took = performance.now() - started;
      checkEqual(permit.slot, crashedPermit.slot, "the crashed holder's slot");
      check(
        permit.fence > crashedPermit.fence,
        `fence ${permit.fence} above the crashed ${crashedPermit.fence}`,
      );
      check(
        took <= ctx.options.expiryBoundMs + ctx.options.granularityMs * 4 + 2_000,
        `permit free after ${Math.round(took)} ms`,
      );
    },
  );

  const lockDelayMs = options.lockDelayMs ?? 0;
  defineCase(
    test,
    factory,
    options,
    'semaphore: a waiter refused by a lock-delay gets the permit once the delay ends',
    async (ctx) => {
      if (lockDelayMs <= 0 || !ctx.harness.provider.capabilities.lockDelay) return;
      const sem = semaphoreFor(ctx, options, 1);
      const a = await ctx.open({ lockDelayMs });
      const b = await ctx.open({ lockDelayMs: 0 });
      const held = await sem.tryAcquire(a);
      check(held, 'first permit');
      const bound = ctx.options.expiryBoundMs + lockDelayMs + ctx.options.granularityMs * 4 + 3_000;
      const waiting = abandonable(sem.acquire(b, { signal: AbortSignal.timeout(bound * 2) }));
      await ctx.harness.crash(a);
      const started = performance.now();
      const permit = await waiting.catch((error: unknown) => {
        throw new Error(
          `conformance: the waiter did not get the permit after the holder crashed (lock-delay ${lockDelayMs} ms): ${String(error)}`,
        );
      });
      const took = performance.now() - started;
      check(took <= bound, `waiter got the permit ${Math.round(took)} ms after the crash, bound ${bound} ms`);
      check(permit.fence > held.fence, 'fence rises after the crash');
    },
  );
}
