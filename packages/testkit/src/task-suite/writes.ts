import type { TaskSource } from '@baton/core';
import type { TestFn } from '../lock-suite/types.js';
import { defineTaskCase, must, verify, verifyEqual, verifySame } from './context.js';
import type { TaskSourceFactory, TaskSuiteOptions } from './types.js';

/** Claims `id` under `fence` or fails the case. */
async function claimed(source: TaskSource, id: string, fence: number, worker = `w${fence}`): Promise<void> {
  const result = await source.claim(id, fence, worker);
  verify(result.claimed, `claim(${id}, ${fence}) must succeed, got ${JSON.stringify(result)}`);
}

/** Fenced writes: complete and fail apply only under the task's current fence while it runs. */
export function fencedWriteTests(
  test: TestFn,
  factory: TaskSourceFactory,
  options: TaskSuiteOptions = {},
): void {
  defineTaskCase(
    test,
    factory,
    options,
    'complete: the current fence completes the task with its result',
    async (ctx) => {
      const [id] = await ctx.source.enqueue({ kind: 'job' });
      await claimed(ctx.source, id!, 3);
      verifySame(await ctx.source.complete(id!, 3, { rows: 12, ok: true }), { applied: true }, 'complete');
      const task = await must(ctx.source, id!);
      verifyEqual(task.status, 'done', 'status');
      verifySame(task.result, { rows: 12, ok: true }, 'result');
      verifyEqual(task.fence, 3, 'fence is kept');
      verifyEqual(task.attempts, 1, 'attempts');
    },
  );

  defineTaskCase(
    test,
    factory,
    options,
    'complete: a stale fence is rejected and changes nothing (the paused worker after a takeover)',
    async (ctx) => {
      const [id] = await ctx.source.enqueue({ kind: 'job' });
      await claimed(ctx.source, id!, 1, 'paused');
      await ctx.harness.elapse(ctx.settings.reclaimAfterMs + 1_000, [id!]);
      await claimed(ctx.source, id!, 2, 'successor');
      const before = await must(ctx.source, id!);
      verifySame(
        await ctx.source.complete(id!, 1, 'late result'),
        { applied: false, reason: 'stale' },
        'stale',
      );
      verifySame(await must(ctx.source, id!), before, 'the stale complete changed nothing');
      verifySame(await ctx.source.complete(id!, 2, 'fresh result'), { applied: true }, 'current fence');
      verifySame((await must(ctx.source, id!)).result, 'fresh result', 'the current result is kept');
      verifySame(
        await ctx.source.complete(id!, 1, 'late result'),
        { applied: false, reason: 'stale' },
        'after',
      );
      verifySame((await must(ctx.source, id!)).result, 'fresh result', 'still the current result');
    },
  );

  defineTaskCase(
    test,
    factory,
    options,
    'complete: only a running task can be completed (never claimed, already done, other fence)',
    async (ctx) => {
      const [pending, done] = await ctx.source.enqueue([{ kind: 'job' }, { kind: 'job' }]);
      const pendingBefore = await must(ctx.source, pending!);
      for (const fence of [0, 1, 100]) {
        verifySame(
          await ctx.source.complete(pending!, fence, 'x'),
          { applied: false, reason: 'stale' },
          `complete of a pending task with fence ${fence}`,
        );
      }
      verifySame(await must(ctx.source, pending!), pendingBefore, 'the pending task is unchanged');

      await claimed(ctx.source, done!, 4);
      verifySame(
        await ctx.source.complete(done!, 5, 'x'),
        { applied: false, reason: 'stale' },
        'newer fence',
      );
      verifySame(await ctx.source.complete(done!, 4, 'first'), { applied: true }, 'complete');
      const doneBefore = await must(ctx.source, done!);
      verifySame(await ctx.source.complete(done!, 4, 'second'), { applied: false, reason: 'stale' }, 'twice');
      verifySame(await must(ctx.source, done!), doneBefore, 'the second complete changed nothing');
      verifySame(
        await ctx.source.complete('900000000000001', 4),
        { applied: false, reason: 'stale' },
        'unknown',
      );
    },
  );

  defineTaskCase(
    test,
    factory,
    options,
    'fail: a stale fence is rejected and changes nothing',
    async (ctx) => {
      const [id] = await ctx.source.enqueue({ kind: 'job' });
      await claimed(ctx.source, id!, 1);
      await ctx.harness.elapse(ctx.settings.reclaimAfterMs + 1_000, [id!]);
      await claimed(ctx.source, id!, 2);
      const before = await must(ctx.source, id!);
      for (const retryable of [true, false]) {
        verifySame(
          await ctx.source.fail(id!, 1, { message: 'late failure', retryable }),
          { applied: false, reason: 'stale' },
          `stale fail (retryable ${retryable})`,
        );
      }
      verifySame(await must(ctx.source, id!), before, 'stale failures changed nothing');
    },
  );

  defineTaskCase(
    test,
    factory,
    options,
    'fail and complete: the first outcome under a fence is final',
    async (ctx) => {
      const [a, b] = await ctx.source.enqueue([{ kind: 'job' }, { kind: 'job' }]);
      await claimed(ctx.source, a!, 1);
      verify((await ctx.source.complete(a!, 1, 'ok')).applied, 'complete');
      verifySame(
        await ctx.source.fail(a!, 1, { message: 'x' }),
        { applied: false, reason: 'stale' },
        'fail after',
      );
      verifyEqual((await must(ctx.source, a!)).status, 'done', 'still done');

      await claimed(ctx.source, b!, 1);
      verify((await ctx.source.fail(b!, 1, { message: 'first' })).applied, 'fail');
      const before = await must(ctx.source, b!);
      verifySame(
        await ctx.source.complete(b!, 1, 'late'),
        { applied: false, reason: 'stale' },
        'complete after',
      );
      verifySame(
        await ctx.source.fail(b!, 1, { message: 'again' }),
        { applied: false, reason: 'stale' },
        'again',
      );
      verifySame(await must(ctx.source, b!), before, 'writes after the outcome changed nothing');
    },
  );

  defineTaskCase(
    test,
    factory,
    options,
    'complete: concurrent completes under the same fence apply exactly once',
    async (ctx) => {
      const [id] = await ctx.source.enqueue({ kind: 'job' });
      await claimed(ctx.source, id!, 9);
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) => ctx.source.complete(id!, 9, { writer: i })),
      );
      const applied = results.flatMap((r, i) => (r.applied ? [i] : []));
      verifyEqual(applied.length, 1, 'exactly one complete applies');
      verifySame(
        (await must(ctx.source, id!)).result,
        { writer: applied[0] },
        'the applied result is stored',
      );
    },
  );
}
