import { MAX_ERROR_MESSAGE_LENGTH } from '@baton/core';
import type { TestFn } from '../lock-suite/types.js';
import { defineTaskCase, must, passIds, sourceNow, verify, verifyEqual, verifySame } from './context.js';
import type { TaskSourceFactory, TaskSuiteOptions } from './types.js';

/** Failures: retried after a backoff on the source's clock until the attempts run out, then dead. */
export function retryTests(test: TestFn, factory: TaskSourceFactory, options: TaskSuiteOptions = {}): void {
  defineTaskCase(
    test,
    factory,
    options,
    'retry: a retryable failure waits for its backoff, then the task is due and claimable again',
    async (ctx) => {
      const [id] = await ctx.source.enqueue({ kind: 'job' });
      const runAt = (await must(ctx.source, id!)).runAt.getTime();
      verify((await ctx.source.claim(id!, 1, 'a')).claimed, 'claim');
      const failed = await ctx.source.fail(id!, 1, { message: 'timeout talking to the mail server' });
      verify(
        failed.applied && failed.status === 'failed',
        `fail must apply as failed, got ${JSON.stringify(failed)}`,
      );
      const task = await must(ctx.source, id!);
      verifyEqual(task.status, 'failed', 'status');
      verifyEqual(task.lastError, 'timeout talking to the mail server', 'lastError');
      verifyEqual(task.runAt.getTime(), failed.nextRunAt.getTime(), 'runAt is the reported nextRunAt');
      verify(task.runAt.getTime() > runAt, 'runAt moved forward');
      verifySame(await passIds(ctx.source), [], 'not due during its backoff');
      verifySame(
        await ctx.source.claim(id!, 2, 'b'),
        { claimed: false, reason: 'not-runnable' },
        'early claim',
      );

      await ctx.harness.elapse(ctx.settings.backoff.maxMs + 1_000, [id!]);
      verifySame(await passIds(ctx.source), [id], 'due once the backoff has passed');
      const again = await ctx.source.claim(id!, 3, 'b');
      verify(again.claimed, `claimable after the backoff, got ${JSON.stringify(again)}`);
      verifyEqual(again.task.attempts, 2, 'second attempt');
      verifyEqual(
        again.task.lastError,
        'timeout talking to the mail server',
        'the error is kept while it runs',
      );
    },
  );

  defineTaskCase(
    test,
    factory,
    options,
    'retry: each backoff lies between half the base delay and the cap, on the source clock',
    async (ctx) => {
      const { baseMs, maxMs } = ctx.settings.backoff;
      const [id] = await ctx.source.enqueue({ kind: 'job', maxAttempts: 10 });
      for (let attempt = 1; attempt <= 5; attempt++) {
        verify((await ctx.source.claim(id!, attempt, 'a')).claimed, `claim #${attempt}`);
        const before = await sourceNow(ctx.source);
        const failed = await ctx.source.fail(id!, attempt, { message: `failure #${attempt}` });
        const after = await sourceNow(ctx.source);
        verify(failed.applied && failed.status === 'failed', `fail #${attempt} applies as failed`);
        const next = failed.nextRunAt.getTime();
        const floor = Math.min(baseMs * 2 ** (attempt - 1), maxMs) / 2;
        verify(next - after >= floor - 1_000, `delay #${attempt} ≥ ${floor} ms (got ≥ ${next - after} ms)`);
        verify(
          next - before <= maxMs + 1_000,
          `delay #${attempt} ≤ cap ${maxMs} ms (got ≤ ${next - before} ms)`,
        );
        await ctx.harness.elapse(maxMs + 1_000, [id!]);
      }
    },
    { backoff: { baseMs: 40_000, maxMs: 200_000 } },
  );

  defineTaskCase(
    test,
    factory,
    options,
    'retry: attempts are counted and the last allowed failure makes the task dead, keeping the error',
    async (ctx) => {
      const [id] = await ctx.source.enqueue({ kind: 'job', maxAttempts: 3 });
      for (let attempt = 1; attempt <= 3; attempt++) {
        const claim = await ctx.source.claim(id!, attempt * 10, `w${attempt}`);
        verify(claim.claimed, `claim #${attempt}`);
        verifyEqual(claim.task.attempts, attempt, `attempts at claim #${attempt}`);
        const outcome = await ctx.source.fail(id!, attempt * 10, { message: `error #${attempt}` });
        if (attempt < 3) {
          verifyEqual(outcome.applied && outcome.status, 'failed', `failure #${attempt} is retried`);
          await ctx.harness.elapse(ctx.settings.backoff.maxMs + 1_000, [id!]);
        } else {
          verifySame(outcome, { applied: true, status: 'dead' }, 'the last failure is final');
        }
      }
      const task = await must(ctx.source, id!);
      verifyEqual(task.status, 'dead', 'status');
      verifyEqual(task.attempts, 3, 'attempts');
      verifyEqual(task.lastError, 'error #3', 'the last error is kept');
      await ctx.harness.elapse(ctx.settings.backoff.maxMs + 1_000, [id!]);
      verifySame(await passIds(ctx.source), [], 'a dead task is never due');
      verifySame(await ctx.source.claim(id!, 99, 'z'), { claimed: false, reason: 'not-runnable' }, 'claim');
    },
  );

  defineTaskCase(
    test,
    factory,
    options,
    'retry: a huge error message is kept cut to MAX_ERROR_MESSAGE_LENGTH characters',
    async (ctx) => {
      const [id] = await ctx.source.enqueue({ kind: 'job', maxAttempts: 5 });
      verify((await ctx.source.claim(id!, 1, 'a')).claimed, 'claim');
      const huge = `start:${'x'.repeat(1_000_000)}:end`;
      const outcome = await ctx.source.fail(id!, 1, { message: huge });
      verify(outcome.applied, 'the failure is recorded');
      const { lastError } = await must(ctx.source, id!);
      verify(
        lastError !== null && lastError.length <= MAX_ERROR_MESSAGE_LENGTH,
        `lastError keeps at most ${MAX_ERROR_MESSAGE_LENGTH} characters, got ${lastError?.length}`,
      );
      verify(lastError.startsWith(`start:${'x'.repeat(1_000)}`), 'lastError keeps the start of the message');
    },
  );

  defineTaskCase(
    test,
    factory,
    options,
    'retry: a non-retryable failure makes the task dead at once',
    async (ctx) => {
      const [id] = await ctx.source.enqueue({ kind: 'job', maxAttempts: 5 });
      verify((await ctx.source.claim(id!, 1, 'a')).claimed, 'claim');
      verifySame(
        await ctx.source.fail(id!, 1, { message: 'payload is not an order', retryable: false }),
        { applied: true, status: 'dead' },
        'fail',
      );
      const task = await must(ctx.source, id!);
      verifyEqual(task.status, 'dead', 'status');
      verifyEqual(task.attempts, 1, 'attempts');
      verifyEqual(task.lastError, 'payload is not an order', 'lastError');
    },
  );

  defineTaskCase(
    test,
    factory,
    options,
    'retry: a task whose worker vanished during its final attempt is buried, not run again',
    async (ctx) => {
      const [id] = await ctx.source.enqueue({ kind: 'job', maxAttempts: 1 });
      verify((await ctx.source.claim(id!, 1, 'vanished')).claimed, 'claim');
      await ctx.harness.elapse(ctx.settings.reclaimAfterMs + 1_000, [id!]);
      verifySame(await ctx.source.claim(id!, 2, 'b'), { claimed: false, reason: 'not-runnable' }, 'takeover');
      const task = await must(ctx.source, id!);
      verifyEqual(task.status, 'dead', 'status');
      verifyEqual(task.attempts, 1, 'no further attempt');
      verify(typeof task.lastError === 'string' && task.lastError.length > 0, 'the reason is recorded');
      verifySame(
        await ctx.source.complete(id!, 1, 'late'),
        { applied: false, reason: 'stale' },
        'late complete',
      );
    },
  );
}
