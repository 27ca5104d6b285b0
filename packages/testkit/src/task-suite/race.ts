import type { TestFn } from '../lock-suite/types.js';
import { defineTaskCase, must, verify, verifyEqual, verifySame } from './context.js';
import type { TaskSourceFactory, TaskSuiteOptions } from './types.js';

/** The races fencing exists for: a lock alone would let these tasks run, or be recorded, twice. */
export function raceTests(test: TestFn, factory: TaskSourceFactory, options: TaskSuiteOptions = {}): void {
  defineTaskCase(
    test,
    factory,
    options,
    'race: a task listed before another worker ran it cannot be claimed again, even with a newer lock',
    async (ctx) => {
      await ctx.source.enqueue([{ kind: 'job' }, { kind: 'job' }, { kind: 'job' }]);
      // Worker A lists the due tasks and is slow to act on the first one.
      const iterator = ctx.source.due({ pageSize: 10 })[Symbol.asyncIterator]();
      const listed = await iterator.next();
      verify(!listed.done, 'A lists a task');
      const id = listed.value.id;
      // Worker B locks it (fence 1), runs it and releases the lock.
      verify((await ctx.source.claim(id, 1, 'B')).claimed, 'B claims');
      verify((await ctx.source.complete(id, 1, 'done by B')).applied, 'B completes');
      // A now gets the lock, with a newer fence, and tries.
      verifySame(await ctx.source.claim(id, 2, 'A'), { claimed: false, reason: 'not-runnable' }, 'A claims');
      const task = await must(ctx.source, id);
      verifyEqual(task.status, 'done', 'status');
      verifyEqual(task.attempts, 1, 'it ran once');
      verifySame(task.result, 'done by B', 'B’s result stands');
      await iterator.return?.();
    },
  );

  defineTaskCase(
    test,
    factory,
    options,
    'race: a worker paused past its lease cannot write over its successor, in any order',
    async (ctx) => {
      const [a, b] = await ctx.source.enqueue([{ kind: 'job' }, { kind: 'job' }]);
      for (const id of [a!, b!]) {
        verify((await ctx.source.claim(id, 1, 'paused')).claimed, 'first worker claims');
        await ctx.harness.elapse(ctx.settings.reclaimAfterMs + 1_000, [id]);
        verify((await ctx.source.claim(id, 2, 'successor')).claimed, 'successor takes over');
      }
      // a: the paused worker wakes up before the successor finishes; b: after.
      verifyEqual((await ctx.source.complete(a!, 1, 'stale')).applied, false, 'stale complete before');
      verifyEqual((await ctx.source.fail(a!, 1, { message: 'stale' })).applied, false, 'stale fail before');
      verifyEqual((await ctx.source.complete(a!, 2, 'fresh')).applied, true, 'successor completes a');
      verifyEqual((await ctx.source.complete(b!, 2, 'fresh')).applied, true, 'successor completes b');
      verifyEqual((await ctx.source.complete(b!, 1, 'stale')).applied, false, 'stale complete after');
      verifyEqual((await ctx.source.fail(b!, 1, { message: 'stale' })).applied, false, 'stale fail after');
      for (const id of [a!, b!]) {
        const task = await must(ctx.source, id);
        verifyEqual(task.status, 'done', 'status');
        verifySame(task.result, 'fresh', 'the successor’s result stands');
        verifyEqual(task.workerId, 'successor', 'workerId');
        verifyEqual(task.lastError, null, 'no stale error recorded');
      }
    },
  );
}
