import type { ClaimResult } from '@baton/core';
import type { TestFn } from '../lock-suite/types.js';
import {
  defineTaskCase,
  FAR_FUTURE,
  must,
  verify,
  verifyEqual,
  verifyRejects,
  verifySame,
} from './context.js';
import type { TaskSourceFactory, TaskSuiteOptions } from './types.js';

/** Claim fencing: a claim applies only with a fence newer than every earlier claim, and only to runnable tasks. */
export function claimTests(test: TestFn, factory: TaskSourceFactory, options: TaskSuiteOptions = {}): void {
  defineTaskCase(test, factory, options, 'claim: a pending task is claimed under the fence', async (ctx) => {
    const [id] = await ctx.source.enqueue({ kind: 'job', payload: { a: 1 } });
    const claim = await ctx.source.claim(id!, 7, 'worker-a');
    verify(claim.claimed, `claim of a pending task must succeed, got ${JSON.stringify(claim)}`);
    verifyEqual(claim.task.id, id, 'claimed task id');
    verifyEqual(claim.task.status, 'running', 'claimed task status');
    verifyEqual(claim.task.fence, 7, 'claimed task fence');
    verifyEqual(claim.task.attempts, 1, 'attempts count the claim');
    verifyEqual(claim.task.workerId, 'worker-a', 'workerId');
    verifySame(claim.task.payload, { a: 1 }, 'the claim returns the payload');
    verifySame(await must(ctx.source, id!), claim.task, 'get() reads back what the claim returned');
  });

  defineTaskCase(
    test,
    factory,
    options,
    'claim: an equal or lower fence is stale and changes nothing',
    async (ctx) => {
      const [id] = await ctx.source.enqueue({ kind: 'job' });
      verify((await ctx.source.claim(id!, 10, 'a')).claimed, 'first claim');
      const before = await must(ctx.source, id!);
      for (const fence of [10, 9, 1, 0]) {
        const result = await ctx.source.claim(id!, fence, 'b');
        verifySame(result, { claimed: false, reason: 'stale' }, `claim with fence ${fence} after fence 10`);
      }
      verifySame(await must(ctx.source, id!), before, 'stale claims leave the task as it was');
    },
  );

  defineTaskCase(test, factory, options, 'claim: an unknown task is missing', async (ctx) => {
    await ctx.source.enqueue({ kind: 'job' });
    for (const id of ['900000000000001', 'no-such-task']) {
      verifySame(await ctx.source.claim(id, 1, 'a'), { claimed: false, reason: 'missing' }, `claim('${id}')`);
      verifyEqual(await ctx.source.get(id), null, `get('${id}')`);
    }
  });

  defineTaskCase(
    test,
    factory,
    options,
    'claim: done and dead tasks are not runnable, whatever the fence',
    async (ctx) => {
      const [done, dead] = await ctx.source.enqueue([{ kind: 'job' }, { kind: 'job' }]);
      verify((await ctx.source.claim(done!, 5, 'a')).claimed, 'claim');
      verify((await ctx.source.complete(done!, 5, 'ok')).applied, 'complete');
      verify((await ctx.source.claim(dead!, 5, 'a')).claimed, 'claim');
      verifySame(
        await ctx.source.fail(dead!, 5, { message: 'bad input', retryable: false }),
        { applied: true, status: 'dead' },
        'non-retryable fail',
      );
      for (const id of [done!, dead!]) {
        const before = await must(ctx.source, id);
        verifySame(
          await ctx.source.claim(id, 6, 'b'),
          { claimed: false, reason: 'not-runnable' },
          'newer fence',
        );
        const older = await ctx.source.claim(id, 2, 'b');
        verify(!older.claimed, 'an older fence cannot claim a finished task either');
        verifySame(await must(ctx.source, id), before, 'a refused claim changes nothing');
      }
    },
  );

  defineTaskCase(test, factory, options, 'claim: a task that is not due yet is not runnable', async (ctx) => {
    const [id] = await ctx.source.enqueue({ kind: 'job', runAt: FAR_FUTURE });
    verifySame(await ctx.source.claim(id!, 1, 'a'), { claimed: false, reason: 'not-runnable' }, 'claim');
    verifyEqual((await must(ctx.source, id!)).status, 'pending', 'still pending');
    verifyEqual((await must(ctx.source, id!)).attempts, 0, 'no attempt counted');
  });

  defineTaskCase(
    test,
    factory,
    options,
    'claim: a running task is taken over only with a higher fence',
    async (ctx) => {
      const [id] = await ctx.source.enqueue({ kind: 'job' });
      verify((await ctx.source.claim(id!, 5, 'a')).claimed, 'first claim');
      verifySame(await ctx.source.claim(id!, 5, 'b'), { claimed: false, reason: 'stale' }, 'same fence');
      await ctx.harness.elapse(ctx.settings.reclaimAfterMs + 1_000, [id!]);
      verifySame(await ctx.source.claim(id!, 4, 'b'), { claimed: false, reason: 'stale' }, 'older fence');
      const takeover = await ctx.source.claim(id!, 6, 'b');
      verify(takeover.claimed, `a higher fence takes a running task over, got ${JSON.stringify(takeover)}`);
      verifyEqual(takeover.task.fence, 6, 'fence after takeover');
      verifyEqual(takeover.task.workerId, 'b', 'worker after takeover');
      verifyEqual(takeover.task.attempts, 2, 'the takeover counts as an attempt');
      verifyEqual(takeover.task.status, 'running', 'status after takeover');
    },
  );

  defineTaskCase(
    test,
    factory,
    options,
    'claim: invalid fences reject with INVALID_ARGUMENT',
    async (ctx) => {
      const [id] = await ctx.source.enqueue({ kind: 'job' });
      for (const fence of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53]) {
        await verifyRejects(
          ctx.source.claim(id!, fence, 'a'),
          'INVALID_ARGUMENT',
          `claim with fence ${fence}`,
        );
        await verifyRejects(
          ctx.source.complete(id!, fence),
          'INVALID_ARGUMENT',
          `complete with fence ${fence}`,
        );
        await verifyRejects(
          ctx.source.fail(id!, fence, { message: 'x' }),
          'INVALID_ARGUMENT',
          `fail with fence ${fence}`,
        );
      }
      verifyEqual((await must(ctx.source, id!)).attempts, 0, 'nothing was claimed');
    },
  );

  defineTaskCase(
    test,
    factory,
    options,
    'claim: concurrent claims with distinct fences: the highest ends up holding it, every success counted',
    async (ctx) => {
      const [id] = await ctx.source.enqueue({ kind: 'job', maxAttempts: 1_000 });
      const fences = Array.from({ length: 20 }, (_, i) => i + 1).sort(() => Math.random() - 0.5);
      const results: ClaimResult[] = await Promise.all(
        fences.map((fence) => ctx.source.claim(id!, fence, `w${fence}`)),
      );
      const wins = fences.filter((_, i) => results[i]!.claimed);
      verify(wins.includes(20), 'the highest fence always wins (nothing newer exists)');
      for (const [i, result] of results.entries()) {
        if (result.claimed)
          verifyEqual(result.task.fence, fences[i]!, 'a successful claim carries its fence');
        else verifyEqual(result.reason, 'stale', `claim with fence ${fences[i]} lost to a newer one`);
      }
      const task = await must(ctx.source, id!);
      verifyEqual(task.fence, 20, 'final fence');
      verifyEqual(task.workerId, 'w20', 'final worker');
      verifyEqual(task.attempts, wins.length, 'attempts = number of successful claims (no lost update)');
    },
  );
}
