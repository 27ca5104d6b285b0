import { check, checkEqual, defineCase } from '../lock-suite/context.js';
import type { LockHarnessFactory, TestFn } from '../lock-suite/types.js';
import { failureOf, semaphoreFor } from './support.js';
import type { SemaphoreSuiteOptions } from './types.js';

/** A process that sees a holder of the same name with another limit refuses with `CONFIG_INVALID`. */
export function semaphoreMismatchTests(
  test: TestFn,
  factory: LockHarnessFactory,
  options: SemaphoreSuiteOptions,
): void {
  defineCase(
    test,
    factory,
    options,
    'semaphore: a different limit for the same name is refused',
    async (ctx) => {
      const two = semaphoreFor(ctx, options, 2);
      const one = semaphoreFor(ctx, options, 1);
      const three = semaphoreFor(ctx, options, 3);
      const a = await ctx.open();
      const b = await ctx.open();
      check(await two.tryAcquire(a), 'first permit of limit 2');
      check(await two.tryAcquire(a), 'second permit of limit 2');
      const smaller = await failureOf(one.tryAcquire(b));
      checkEqual(smaller?.code, 'CONFIG_INVALID', 'tryAcquire with limit 1 while limit-2 permits are held');
      checkEqual(smaller?.field, 'limit', 'the field named');
      const blocking = await failureOf(one.acquire(b, { timeoutMs: ctx.options.expiryBoundMs + 2_000 }));
      checkEqual(blocking?.code, 'CONFIG_INVALID', 'blocking acquire with limit 1 (not a timeout)');
      const larger = await three.tryAcquire(b);
      check(larger, 'limit 3 takes the slot limit 2 does not use (the documented gap)');
      checkEqual(larger.slot, 2, 'the slot beyond limit 2');
      const c = await ctx.open();
      const seen = await failureOf(two.tryAcquire(c));
      checkEqual(seen?.code, 'CONFIG_INVALID', 'limit 2 once it sees slot 2 held by a limit-3 permit');
      const fromThree = await failureOf(three.tryAcquire(c));
      checkEqual(fromThree?.code, 'CONFIG_INVALID', 'limit 3 once full and it sees limit-2 permits');
    },
  );
}
