import type { Lease, LockWaiter } from '@baton/core';
import { abandonable, check, checkEqual, defineCase, eventually, rejects } from './context.js';
import { handoverBoundMs, inLine, openLong } from './fairness.js';
import type { LockHarnessFactory, LockSuiteOptions, TestFn } from './types.js';

/**
 * The provider's view of a key's line of waiters (capability `waiters`): listed in the order the backend
 * serves them, and a waiter that gives up leaves the list. A provider that has the method declares the
 * capability, and only a backend with a line (`fairQueue`) may.
 */
export function waitersTests(test: TestFn, factory: LockHarnessFactory, options: LockSuiteOptions): void {
  defineCase(
    test,
    factory,
    options,
    'waiters: listed in line order, and a waiter that aborts leaves the list',
    async (ctx) => {
      const provider = ctx.harness.provider;
      const declared = provider.capabilities.waiters === true;
      checkEqual(typeof provider.waiters === 'function', declared, 'waiters() exists exactly when declared');
      if (!declared || !provider.waiters) return;
      check(provider.capabilities.fairQueue, 'the waiters capability needs a line (fairQueue)');
      const read = provider.waiters.bind(provider);
      const key = ctx.key();
      checkEqual((await read(key)).length, 0, 'waiters of a key nobody waits for');
      const holder = await openLong(ctx);
      const lease = await holder.tryAcquire(key);
      check(lease, 'acquire');
      const [b, c, d] = [await openLong(ctx), await openLong(ctx), await openLong(ctx)];
      const stopC = new AbortController();
      const started = Date.now();
      const waits: Array<{ session: typeof b; wait: Promise<Lease> }> = [];
      for (const [session, signal] of [
        [b, undefined],
        [c, stopC.signal],
        [d, undefined],
      ] as const) {
        const wait = abandonable(session.acquire(key, signal ? { signal } : { timeoutMs: 60_000 }));
        waits.push({ session, wait });
        await inLine(ctx, key, session);
      }
      const listed = await read(key);
      const skew = ctx.options.holderClockSkewMs ?? 100;
      checkEqual(names(listed), [b.id, c.id, d.id].join(' '), 'waiters in the order they lined up');
      checkEqual(names(listed), names(await expectedOrder(ctx, key)), 'waiters as the backend stores them');
      listed.forEach((w, i) => {
        checkEqual(w.position, i + 1, `position of waiter ${i + 1}`);
        checkEqual(w.since === undefined, w.sinceSource === undefined, 'since and sinceSource come together');
        if (i > 0 && w.since !== undefined && listed[i - 1]!.since !== undefined) {
          check(w.since >= listed[i - 1]!.since! - skew, 'a later waiter does not wait since earlier');
        }
        if (w.since !== undefined) {
          check(
            w.since >= started - skew && w.since <= Date.now() + skew,
            `waiter ${w.sessionId} waits since ${w.since}, outside the window of its acquire call`,
          );
        }
      });
      stopC.abort(new Error('caller gave up'));
      await rejects(waits[1]!.wait, 'the aborted wait');
      const remaining = await eventually(
        async () => {
          const now = await read(key);
          return now.some((w) => w.sessionId === c.id) ? undefined : now;
        },
        handoverBoundMs(ctx, c.ttlMs) + 2_000,
        'the aborted waiter to leave the list',
        ctx.options.granularityMs,
      );
      checkEqual(
        names(remaining),
        names(listed.filter((w) => w.sessionId !== c.id)),
        'waiters after one aborted',
      );
      checkEqual(remaining.map((w) => w.position).join(' '), '1 2', 'positions after one aborted');
      await lease.release();
      const got = await waits[0]!.wait;
      const last = await eventually(
        async () => {
          const now = await read(key);
          return now.length === 1 ? now : undefined;
        },
        handoverBoundMs(ctx) + 2_000,
        'the served waiter to leave the list',
        ctx.options.granularityMs,
      );
      checkEqual(names(last), d.id, 'the waiter left after the first was served');
      checkEqual(last[0]!.position, 1, 'position of the last waiter');
      await got.release();
      await (await waits[2]!.wait).release();
      checkEqual((await read(key)).length, 0, 'waiters once everyone was served');
    },
  );
}

function names(waiters: readonly Pick<LockWaiter, 'sessionId'>[]): string {
  return waiters.map((w) => w.sessionId).join(' ');
}

/** The line as the harness reads it from the backend directly. */
async function expectedOrder(
  ctx: Parameters<typeof inLine>[0],
  key: string,
): Promise<Array<Pick<LockWaiter, 'sessionId'>>> {
  const stored = await ctx.harness.inspect(key);
  return (stored?.waiters ?? []).map((sessionId) => ({ sessionId }));
}
