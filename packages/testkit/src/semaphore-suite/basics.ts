import type { Permit } from '@baton/core';
import { check, checkEqual, defineCase } from '../lock-suite/context.js';
import type { LockHarnessFactory, TestFn } from '../lock-suite/types.js';
import { semaphoreFor } from './support.js';
import type { SemaphoreSuiteOptions } from './types.js';

/** Taking permits up to the limit, refusal beyond it, release, and what `holders()` reports. */
export function semaphoreBasicTests(
  test: TestFn,
  factory: LockHarnessFactory,
  options: SemaphoreSuiteOptions,
): void {
  defineCase(
    test,
    factory,
    options,
    'semaphore: grants up to limit permits, then none until one is released',
    async (ctx) => {
      const limit = 3;
      const sem = semaphoreFor(ctx, options, limit);
      const a = await ctx.open();
      const b = await ctx.open();
      const permits: Permit[] = [];
      for (let i = 0; i < limit; i++) {
        const permit = await sem.tryAcquire(i % 2 === 0 ? a : b, { value: `p${i}` });
        check(permit, `permit ${i + 1} of ${limit} granted on a free semaphore`);
        permits.push(permit);
      }
      checkEqual(new Set(permits.map((p) => p.slot)).size, limit, 'distinct slots');
      for (const permit of permits) {
        check(permit.slot >= 0 && permit.slot < limit, `slot ${permit.slot} within the limit`);
        checkEqual(permit.key, `${sem.name}/slot/${permit.slot}`, 'slot key');
        checkEqual(permit.limit, limit, 'permit limit');
        check(!permit.signal.aborted, 'a fresh permit is valid');
      }
      checkEqual(await sem.tryAcquire(a), null, 'tryAcquire on a full semaphore (holder session)');
      checkEqual(await sem.tryAcquire(b), null, 'tryAcquire on a full semaphore (other session)');
      const holders = await sem.holders();
      checkEqual(holders.length, limit, 'holders() while full');
      for (const permit of permits) {
        const holder = holders.find((h) => h.slot === permit.slot);
        check(holder, `holders() lists slot ${permit.slot}`);
        checkEqual(holder.sessionId, permit.sessionId, 'holder session');
        checkEqual(holder.fence, permit.fence, 'holder fence');
        checkEqual(holder.limit, limit, 'holder limit');
        checkEqual(holder.value, permit.value, 'holder value');
      }
      checkEqual(await permits[1]!.release(), true, 'release of a held permit');
      check(permits[1]!.signal.aborted, 'a released permit is no longer valid');
      const next = await sem.tryAcquire(b);
      check(next, 'a released permit can be taken again');
      checkEqual(next.slot, permits[1]!.slot, 'the freed slot');
      checkEqual(await sem.tryAcquire(a), null, 'full again');
    },
  );
}
