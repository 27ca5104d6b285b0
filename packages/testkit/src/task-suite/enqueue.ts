import { MAX_TASK_ATTEMPTS, MAX_TASK_DELAY_MS } from '@baton/core';
import type { TestFn } from '../lock-suite/types.js';
import {
  defineTaskCase,
  FAR_FUTURE,
  must,
  passIds,
  verify,
  verifyEqual,
  verifyRejects,
  verifySame,
} from './context.js';
import type { TaskSourceFactory, TaskSuiteOptions } from './types.js';

/** Enqueue: single and batch, ids in input order, idempotency keys, validation, JSON round trip. */
export function enqueueTests(test: TestFn, factory: TaskSourceFactory, options: TaskSuiteOptions = {}): void {
  defineTaskCase(
    test,
    factory,
    options,
    'enqueue: a single task is stored pending, unclaimed, due now',
    async (ctx) => {
      const ids = await ctx.source.enqueue({ kind: 'email', payload: { to: 'a@example.com' } });
      verifyEqual(ids.length, 1, 'ids returned for one task');
      const id = ids[0]!;
      verify(typeof id === 'string' && id.length > 0, 'the id is a non-empty string');
      const task = await must(ctx.source, id);
      verifyEqual(task.id, id, 'id');
      verifyEqual(task.kind, 'email', 'kind');
      verifySame(task.payload, { to: 'a@example.com' }, 'payload');
      verifyEqual(task.status, 'pending', 'status');
      verifyEqual(task.attempts, 0, 'attempts');
      verifyEqual(task.maxAttempts, ctx.settings.defaultMaxAttempts, 'maxAttempts defaults to the setting');
      verifyEqual(task.fence, null, 'fence');
      verifyEqual(task.workerId, null, 'workerId');
      verifyEqual(task.result, null, 'result');
      verifyEqual(task.lastError, null, 'lastError');
      verify(task.runAt.getTime() <= task.createdAt.getTime() + 1, 'runAt defaults to the creation time');
      verifySame(await passIds(ctx.source), [id], 'the new task is due at once');
    },
  );

  defineTaskCase(
    test,
    factory,
    options,
    'enqueue: a batch returns distinct ids in input order',
    async (ctx) => {
      const input = Array.from({ length: 25 }, (_, n) => ({
        kind: `k${n % 3}`,
        payload: { n },
        maxAttempts: n + 1,
      }));
      const ids = await ctx.source.enqueue(input);
      verifyEqual(ids.length, input.length, 'one id per task');
      verifyEqual(new Set(ids).size, ids.length, 'ids are distinct');
      for (const [n, id] of ids.entries()) {
        const task = await must(ctx.source, id);
        verifyEqual(task.kind, `k${n % 3}`, `kind of #${n}`);
        verifySame(task.payload, { n }, `payload of #${n}`);
        verifyEqual(task.maxAttempts, n + 1, `maxAttempts of #${n}`);
      }
      verifySame(await ctx.source.enqueue([]), [], 'an empty batch returns no ids');
    },
  );

  defineTaskCase(
    test,
    factory,
    options,
    'enqueue: a known idempotency key adds nothing and returns the stored id (also within one batch)',
    async (ctx) => {
      const [first] = await ctx.source.enqueue({ kind: 'report', id: 'order-42', payload: { v: 1 } });
      const [again] = await ctx.source.enqueue({ kind: 'other', id: 'order-42', payload: { v: 2 } });
      verifyEqual(again, first, 'the duplicate returns the stored id');
      const stored = await must(ctx.source, first!);
      verifyEqual(stored.kind, 'report', 'the stored task keeps its kind');
      verifySame(stored.payload, { v: 1 }, 'the stored task keeps its payload');

      const batch = await ctx.source.enqueue([
        { kind: 'a', id: 'x-1' },
        { kind: 'b' },
        { kind: 'c', id: 'x-1' },
        { kind: 'd', id: 'order-42' },
        { kind: 'e', id: 'x-2' },
      ]);
      verifyEqual(batch.length, 5, 'one id per input, duplicates included');
      verifyEqual(batch[2], batch[0], 'a key repeated in the batch maps to the first one');
      verifyEqual(batch[3], first, 'a key stored before maps to the stored task');
      verifyEqual(new Set(batch).size, 4, 'the other tasks are new');
      verifyEqual((await must(ctx.source, batch[0]!)).kind, 'a', 'the first of the repeated keys wins');
      const due = await passIds(ctx.source);
      verifyEqual(due.length, 4, 'exactly four tasks exist (order-42, x-1, x-2 and the keyless one)');
    },
  );

  defineTaskCase(
    test,
    factory,
    options,
    'enqueue: invalid tasks reject with INVALID_ARGUMENT and nothing of the batch is stored',
    async (ctx) => {
      const bad: Array<[string, unknown]> = [
        ['empty kind', { kind: '' }],
        ['kind not a string', { kind: 42 }],
        ['maxAttempts 0', { kind: 'x', maxAttempts: 0 }],
        ['fractional maxAttempts', { kind: 'x', maxAttempts: 1.5 }],
        ['invalid runAt', { kind: 'x', runAt: new Date(Number.NaN) }],
        ['payload with a BigInt', { kind: 'x', payload: { n: 10n } }],
        ['empty id', { kind: 'x', id: '' }],
        ['maxAttempts above 2^31 − 1', { kind: 'x', maxAttempts: MAX_TASK_ATTEMPTS + 1 }],
        ['negative delayMs', { kind: 'x', delayMs: -1 }],
        ['delayMs NaN', { kind: 'x', delayMs: Number.NaN }],
        ['delayMs beyond 100 years', { kind: 'x', delayMs: MAX_TASK_DELAY_MS + 1 }],
        ['delayMs not a number', { kind: 'x', delayMs: '5000' }],
        ['runAt and delayMs together', { kind: 'x', runAt: new Date(), delayMs: 0 }],
      ];
      for (const [what, task] of bad) {
        await verifyRejects(
          ctx.source.enqueue([{ kind: 'batch-mate' }, task as { kind: string }]),
          'INVALID_ARGUMENT',
          what,
        );
      }
      verifySame(await passIds(ctx.source), [], 'no task of a rejected batch was stored');
    },
  );

  defineTaskCase(test, factory, options, 'enqueue: payloads round-trip as JSON', async (ctx) => {
    const payloads: unknown[] = [
      null,
      0,
      -12.5,
      'text with "quotes", \\ and ünïcødé 🚀',
      [1, 'two', { three: [3] }],
      { nested: { deep: { list: [true, false, null] } }, empty: {}, arr: [] },
      { when: new Date('2026-01-02T03:04:05.678Z') },
    ];
    const ids = await ctx.source.enqueue(payloads.map((payload) => ({ kind: 'json', payload })));
    for (const [i, id] of ids.entries()) {
      const task = await must(ctx.source, id);
      verifySame(task.payload, JSON.parse(JSON.stringify(payloads[i])), `payload #${i}`);
    }
    const [none] = await ctx.source.enqueue({ kind: 'json' });
    verifyEqual((await must(ctx.source, none!)).payload, null, 'a missing payload reads back as null');
  });

  defineTaskCase(
    test,
    factory,
    options,
    "enqueue: delayMs counts from the source's clock when the task is stored, never the caller's",
    async (ctx) => {
      const delay = 90_000;
      const [later] = await ctx.source.enqueue({ kind: 'later', delayMs: delay });
      const [now] = await ctx.source.enqueue({ kind: 'now', delayMs: 0 });
      const task = await must(ctx.source, later!);
      // createdAt is the source's now. A source that adds the delay to the caller's clock is off by however
      // far the two clocks disagree (caught here when they disagree by more than a second).
      const gap = task.runAt.getTime() - task.createdAt.getTime();
      verify(
        Math.abs(gap - delay) <= 1_000,
        `runAt must be delayMs after the creation time on the source's clock: expected ${delay} ms, got ${gap} ms`,
      );
      verifySame(await passIds(ctx.source), [now], 'only the task without a delay is due');
      await ctx.harness.elapse(delay + 1_000, [later!, now!]);
      verifySame(
        (await passIds(ctx.source)).sort(),
        [later, now].sort(),
        'the delayed task is due once its delay has passed',
      );
    },
  );

  defineTaskCase(
    test,
    factory,
    options,
    'enqueue: enqueueWithResults (optional) says which tasks were added and which keys were known',
    async (ctx) => {
      const source = ctx.source;
      if (!source.enqueueWithResults) return;
      const first = await source.enqueueWithResults([
        { kind: 'a', id: 'r-1' },
        { kind: 'b' },
        { kind: 'c', id: 'r-1' },
      ]);
      verifySame(
        first.map((r) => r.added),
        [true, true, false],
        'added flags of a batch whose third task repeats the first key',
      );
      verifyEqual(first[2]!.id, first[0]!.id, 'the repeated key maps to the first task');
      verifyEqual((await must(source, first[0]!.id)).kind, 'a', 'the first task of the key was stored');
      verifySame(
        await source.enqueueWithResults({ kind: 'a', id: 'r-1' }),
        [{ id: first[0]!.id, added: false }],
        'a known key adds nothing',
      );
      const ids = await source.enqueue([{ kind: 'd', id: 'r-2' }]);
      const [stored, fresh] = await source.enqueueWithResults([{ kind: 'e', id: 'r-2' }, { kind: 'f' }]);
      verifySame(stored, { id: ids[0], added: false }, 'a key stored by enqueue() is known');
      verifyEqual(fresh?.added, true, 'a task without a key is added');
      verifyEqual((await must(source, fresh!.id)).kind, 'f', 'the added task is stored');
      verifyEqual((await passIds(source)).length, 4, 'four tasks exist (r-1, the keyless two, r-2)');
    },
  );

  defineTaskCase(test, factory, options, 'enqueue: runAt in the future is kept and not due', async (ctx) => {
    const [later] = await ctx.source.enqueue({ kind: 'later', runAt: FAR_FUTURE });
    const [past] = await ctx.source.enqueue({ kind: 'past', runAt: new Date('2001-01-01T00:00:00Z') });
    verifyEqual((await must(ctx.source, later!)).runAt.getTime(), FAR_FUTURE.getTime(), 'runAt is stored');
    verifySame(await passIds(ctx.source), [past], 'only the task whose runAt has passed is due');
  });
}
