import { type LockSession, type Permit, semaphoreLineKey, semaphoreQueues } from '@baton/core';
import { check, checkEqual, defineCase, eventually } from '../lock-suite/context.js';
import { handoverBoundMs, inLine, openLong } from '../lock-suite/fairness.js';
import type { LockHarnessFactory, TestFn } from '../lock-suite/types.js';
import { semaphoreFor } from './support.js';
import type { SemaphoreSuiteOptions } from './types.js';

/**
 * Where the semaphore queues (`semaphoreQueues`: a fair line woken by a watch), blocking `acquire` calls get
 * permits in the order they started waiting: the first waiter heads the semaphore's line (it holds the line
 * key, `semaphoreLineKey(name)`) and the others queue on that key. Other backends skip it.
 */
export function semaphoreFairnessTests(
  test: TestFn,
  factory: LockHarnessFactory,
  options: SemaphoreSuiteOptions,
): void {
  defineCase(
    test,
    factory,
    options,
    'semaphore: waiters get permits in the order they started waiting (fair queue)',
    async (ctx) => {
      if (!semaphoreQueues(ctx.harness.provider)) return;
      const sem = semaphoreFor(ctx, options, 1);
      const line = semaphoreLineKey(sem.name);
      const holder = await openLong(ctx);
      const first = await sem.tryAcquire(holder);
      check(first, 'the only permit');
      const order: string[] = [];
      const permits: Permit[] = [];
      const waiting: Promise<void>[] = [];
      const start = (name: string, session: LockSession) => {
        const served = sem.acquire(session).then((permit) => {
          order.push(name);
          permits.push(permit);
        });
        // A case that fails early ends its sessions: the waits then reject, and that is not a second failure.
        served.catch(() => undefined);
        waiting.push(served);
      };
      const bound = handoverBoundMs(ctx, Math.max(ctx.ttlMs, 3_000)) + 5_000;
      const a = await openLong(ctx);
      start('a', a);
      await eventually(
        async () => ((await ctx.harness.provider.getHolder(line))?.sessionId === a.id ? true : undefined),
        bound,
        'the first waiter to head the line',
      );
      for (const name of ['b', 'c', 'd']) {
        const session = await openLong(ctx);
        start(name, session);
        await inLine(ctx, line, session);
      }
      await first.release();
      for (let served = 1; served <= 4; served++) {
        await eventually(async () => (order.length >= served ? true : undefined), bound, `waiter #${served}`);
        await permits[served - 1]!.release();
      }
      await Promise.all(waiting);
      checkEqual(order.join(' '), 'a b c d', 'order in which the waiters got the permit');
    },
  );
}
