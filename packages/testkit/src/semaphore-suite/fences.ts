import { check, checkEqual, defineCase } from '../lock-suite/context.js';
import type { LockHarnessFactory, TestFn } from '../lock-suite/types.js';
import { semaphoreFor } from './support.js';
import type { SemaphoreSuiteOptions } from './types.js';

/** Each permit carries its slot's fence, rising with every acquisition of that slot by anyone. */
export function semaphoreFenceTests(
  test: TestFn,
  factory: LockHarnessFactory,
  options: SemaphoreSuiteOptions,
): void {
  defineCase(test, factory, options, "semaphore: a permit's fence rises per slot", async (ctx) => {
    const limit = 2;
    const sem = semaphoreFor(ctx, options, limit);
    const sessions = [await ctx.open(), await ctx.open()];
    const last = new Map<string, number>();
    for (let round = 0; round < 12; round++) {
      const permit = await sem.tryAcquire(sessions[round % 2]!);
      check(permit, `permit in round ${round}`);
      checkEqual(permit.key, `${sem.name}/slot/${permit.slot}`, 'slot key');
      check(
        Number.isSafeInteger(permit.fence) && permit.fence > 0,
        `fence ${permit.fence} is a safe integer`,
      );
      const previous = last.get(permit.key);
      if (previous !== undefined) {
        check(permit.fence > previous, `fence ${permit.fence} of ${permit.key} is not above ${previous}`);
      }
      last.set(permit.key, permit.fence);
      const holder = (await sem.holders()).find((h) => h.slot === permit.slot);
      checkEqual(holder?.fence, permit.fence, 'the backend reports the permit fence');
      await permit.release();
    }
    check(last.size >= 1 && last.size <= limit, `${last.size} slot keys used`);
  });
}
