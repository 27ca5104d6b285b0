import { isBatonError, type LockSession, type Permit, type Semaphore } from '@baton/core';
import { aborted, check, checkEqual, defineCase, delay, eventually } from '../lock-suite/context.js';
import type { LockHarnessFactory, TestFn } from '../lock-suite/types.js';
import { semaphoreFor } from './support.js';
import { PermitTracker } from './tracker.js';
import type { SemaphoreSuiteOptions } from './types.js';

/** Contenders taking and releasing permits at once (blocking and non-blocking), with crashes. */
export function semaphoreContentionTests(
  test: TestFn,
  factory: LockHarnessFactory,
  options: SemaphoreSuiteOptions,
): void {
  const limit = options.contention?.limit ?? 3;
  const contenders = options.contention?.contenders ?? 2 * limit;
  const grants = options.contention?.grants ?? 30;
  const crashes = Math.min(options.contention?.crashes ?? 2, grants - 1);
  const crashEvery = crashes > 0 ? Math.floor(grants / (crashes + 1)) : Number.POSITIVE_INFINITY;
  defineCase(
    test,
    factory,
    options,
    `semaphore: never more than limit valid permits: limit ${limit}, ${contenders} contenders, ` +
      `${grants} grants, ${crashes} crashes`,
    async (ctx) => {
      const sem = semaphoreFor(ctx, options, limit);
      const tracker = new PermitTracker(limit);
      const stop = new AbortController();
      let crashed = 0;
      let sessionsLost = 0;
      const contender = async (name: string, blocking: boolean) => {
        let session: LockSession = await ctx.open({ lockDelayMs: 0 });
        while (!stop.signal.aborted) {
          if (session.signal.aborted) {
            sessionsLost++;
            session = await ctx.open({ lockDelayMs: 0 });
          }
          const permit = await take(sem, session, blocking, stop.signal, ctx.options.granularityMs);
          if (permit === 'retry') continue;
          if (!permit) return;
          tracker.granted(name, permit);
          if (tracker.grants >= grants) stop.abort();
          await delay(Math.random() * ctx.options.granularityMs);
          tracker.assertClean();
          if (permit.signal.aborted) {
            await aborted(session.signal, ctx.options.granularityMs * 2 + 200, 'session').catch(
              () => undefined,
            );
            check(
              session.signal.aborted,
              `${name}'s permit (${permit.key}) was taken away while its session was live: ` +
                String(permit.signal.reason),
            );
            continue;
          }
          const grant = tracker.grants;
          if (crashed < Math.floor(grant / crashEvery) && crashed < crashes && grant < grants) {
            crashed++;
            tracker.ended(permit);
            await ctx.harness.crash(session);
            session = await ctx.open({ lockDelayMs: 0 });
          } else {
            tracker.ended(permit);
            await permit.release();
          }
        }
      };
      await Promise.all(Array.from({ length: contenders }, (_, i) => contender(`c${i}`, i % 2 === 0)));
      tracker.assertClean();
      check(tracker.grants >= grants, `${tracker.grants} grants, expected ${grants}`);
      checkEqual(crashed, crashes, 'permits ended by a crash');
      check(sessionsLost <= contenders, `${sessionsLost} sessions lost during a short contended run`);
      check(tracker.maxValid <= limit, `${tracker.maxValid} permits valid at once`);
      await eventually(
        async () => ((await sem.holders()).length === 0 ? true : undefined),
        ctx.options.expiryBoundMs + ctx.options.granularityMs * 4 + 2_000,
        'no holders once everyone stopped',
      );
    },
  );
}

/** A permit, `undefined` once stopped, `retry` after a lost session. */
async function take(
  sem: Semaphore,
  session: LockSession,
  blocking: boolean,
  stop: AbortSignal,
  granularityMs: number,
): Promise<Permit | 'retry' | undefined> {
  try {
    if (blocking) return await sem.acquire(session, { signal: stop });
    for (;;) {
      if (stop.aborted) return undefined;
      const permit = await sem.tryAcquire(session);
      if (permit) return permit;
      await delay(granularityMs / 2 + Math.random() * granularityMs);
    }
  } catch (error) {
    if (isBatonError(error, 'ABORTED') && stop.aborted) return undefined;
    if (session.signal.aborted) return 'retry';
    throw error;
  }
}
