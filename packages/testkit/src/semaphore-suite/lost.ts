import { check, checkEqual, defineCase, eventually } from '../lock-suite/context.js';
import type { LockHarnessFactory, TestFn } from '../lock-suite/types.js';
import { semaphoreFor } from './support.js';
import type { SemaphoreSuiteOptions } from './types.js';

/** Releasing a permit that was lost never frees the slot for its new holder. */
export function semaphoreLostPermitTests(
  test: TestFn,
  factory: LockHarnessFactory,
  options: SemaphoreSuiteOptions,
): void {
  defineCase(test, factory, options, 'semaphore: releasing a lost permit is harmless', async (ctx) => {
    const sem = semaphoreFor(ctx, options, 1);
    const a = await ctx.open({ lockDelayMs: 0 });
    const b = await ctx.open({ lockDelayMs: 0 });
    const lost = await sem.tryAcquire(a);
    check(lost, 'the only permit');
    await ctx.harness.crash(a);
    const taken = await eventually(
      async () => (await sem.tryAcquire(b)) ?? undefined,
      ctx.options.expiryBoundMs + ctx.options.granularityMs * 4 + 2_000,
      "the crashed holder's permit",
    );
    const released = await lost.release().then(
      (result) => result,
      () => 'rejected',
    );
    check(released !== true, 'release of a lost permit claimed to release it');
    check(lost.signal.aborted, 'a lost permit, once released, is not valid');
    check(!taken.signal.aborted, "the new holder's permit is still valid");
    const holders = await sem.holders();
    checkEqual(holders.length, 1, 'holders after the stale release');
    checkEqual(holders[0]?.sessionId, b.id, 'the new holder still holds the slot');
    checkEqual(holders[0]?.fence, taken.fence, "the new holder's fence");
    const c = await ctx.open();
    checkEqual(await sem.tryAcquire(c), null, 'the slot was not freed by the stale release');
  });
}
