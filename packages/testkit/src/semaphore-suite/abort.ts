import { abandonable, check, checkEqual, defineCase, delay } from '../lock-suite/context.js';
import type { LockHarnessFactory, TestFn } from '../lock-suite/types.js';
import { failureOf, semaphoreFor } from './support.js';
import type { SemaphoreSuiteOptions } from './types.js';

/** A waiter that gives up (signal, timeout) rejects promptly and leaves no permit behind. */
export function semaphoreAbortTests(
  test: TestFn,
  factory: LockHarnessFactory,
  options: SemaphoreSuiteOptions,
): void {
  defineCase(
    test,
    factory,
    options,
    'semaphore: an aborted or timed-out waiter leaves nothing behind',
    async (ctx) => {
      const sem = semaphoreFor(ctx, options, 1);
      const a = await ctx.open();
      const b = await ctx.open();
      const held = await sem.tryAcquire(a);
      check(held, 'the only permit');
      const pre = new AbortController();
      pre.abort(new Error('already'));
      const bound = ctx.ttlMs + 2_000;
      checkEqual(
        (await settled(failureOf(sem.acquire(b, { signal: pre.signal })), bound))?.code,
        'ABORTED',
        'pre-aborted signal',
      );
      const controller = new AbortController();
      const waiting = failureOf(sem.acquire(b, { signal: controller.signal }));
      await delay(ctx.options.granularityMs * 2);
      const abortedAt = performance.now();
      controller.abort(new Error('caller gave up'));
      checkEqual((await settled(waiting, bound))?.code, 'ABORTED', 'aborted waiter');
      const abortTook = performance.now() - abortedAt;
      check(abortTook < ctx.ttlMs + 2_000, `abort took ${Math.round(abortTook)} ms`);
      const timeoutMs = ctx.options.granularityMs * 3;
      checkEqual(
        (await settled(failureOf(sem.acquire(b, { timeoutMs })), timeoutMs + bound))?.code,
        'TIMEOUT',
        'timed-out waiter',
      );
      await held.release();
      checkEqual(
        b.leases().filter((lease) => lease.key.startsWith(`${sem.name}/`)).length,
        0,
        'slot leases left in the session of the waiter that gave up',
      );
      const c = await ctx.open();
      const next = await sem.tryAcquire(c);
      check(next, 'the released permit is free for another session (no leaked permit)');
      const holders = await sem.holders();
      checkEqual(holders.length, 1, 'holders after the handover');
      checkEqual(holders[0]?.sessionId, c.id, 'the holder');
    },
  );
}

/** The waiter's outcome, or a failed check when it is still waiting after `ms`. */
async function settled<T>(waiting: Promise<T>, ms: number): Promise<T> {
  const late = Symbol('late');
  const outcome = await Promise.race([abandonable(waiting), delay(ms).then(() => late)]);
  check(outcome !== late, `the waiter kept waiting ${ms} ms after its signal aborted or its timeout passed`);
  return outcome as T;
}
