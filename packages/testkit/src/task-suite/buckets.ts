import {
  type BucketLeaseRef,
  type BucketTaskSource,
  isBucketTaskSource,
  type LeaseLayout,
  type Task,
} from '@baton/core';
import type { TestFn } from '../lock-suite/types.js';
import {
  defineTaskCase,
  enqueueMany,
  must,
  type TaskCase,
  verify,
  verifyEqual,
  verifyRejects,
  verifySame,
} from './context.js';
import type { TaskSourceFactory, TaskSuiteOptions } from './types.js';

/**
 * Bucket leases: the layout (declared once, changed only deliberately, checked by every write), the fenced
 * batch claim and settle of a {@link BucketTaskSource}, and what makes them safe: a lower lock fence writes
 * nothing once a higher one has, and claim tokens identify attempts (a task retried inside one lease gets a
 * higher token). Runs only against sources that implement the bucket operations.
 */
export function bucketTests(test: TestFn, factory: TaskSourceFactory, options: TaskSuiteOptions = {}): void {
  const bucketCase = (name: string, body: (ctx: TaskCase, source: BucketTaskSource) => Promise<void>) =>
    defineTaskCase(test, factory, options, `buckets: ${name}`, async (ctx) => {
      verify(isBucketTaskSource(ctx.source), 'the source does not implement the bucket operations');
      await body(ctx, ctx.source);
    });

  bucketCase(
    'the first declared layout wins; the table runs in task mode until one is',
    async (_ctx, source) => {
      verifyEqual(await source.leaseLayout(), null, 'a new table has no declared layout');
      const declared = await source.declareLeaseLayout({ mode: 'bucket', buckets: 4 });
      verifySame(
        { mode: declared.mode, buckets: declared.buckets, locks: declared.locks },
        { mode: 'bucket', buckets: 4, locks: null },
        'declared layout',
      );
      const again = await source.declareLeaseLayout({ mode: 'task' });
      verifySame(again, declared, 'a second declaration returns the stored layout, unchanged');
      verifySame(await source.leaseLayout(), declared, 'leaseLayout() reads it back');
      await verifyRejects(
        source.declareLeaseLayout({ mode: 'bucket', buckets: 3 }),
        'INVALID_ARGUMENT',
        'a bucket count that is not a power of two',
      );
      await verifyRejects(
        source.declareLeaseLayout({ mode: 'bucket', buckets: source.shards * 2 }),
        'INVALID_ARGUMENT',
        'more buckets than shards',
      );
    },
  );

  bucketCase(
    'claimBucket takes due tasks of its bucket only, up to the limit, each once',
    async (_ctx, source) => {
      const layout = await source.declareLeaseLayout({ mode: 'bucket', buckets: 4 });
      const ids = await enqueueMany(source, 60);
      const owner = new Map<string, number>();
      for (let bucket = 0; bucket < 4; bucket++) {
        const lease = leaseOf(layout, bucket, 10);
        const first = await claimed(source, lease, 'w', 5);
        verify(first.length <= 5, `a limit of 5 claimed ${first.length} tasks`);
        const rest = await claimed(source, lease, 'w', 1_000);
        for (const task of [...first, ...rest]) {
          verify(
            !owner.has(task.id),
            `task ${task.id} claimed in buckets ${owner.get(task.id)} and ${bucket}`,
          );
          owner.set(task.id, bucket);
          verifyEqual(task.status, 'running', 'a claimed task is running');
          verifyEqual(task.attempts, 1, 'the claim counts an attempt');
          verifyEqual(task.workerId, 'w', 'workerId');
          verify(task.fence !== null && task.fence > 0, 'a claim token is a positive number');
        }
        verifyEqual((await claimed(source, lease, 'w', 1_000)).length, 0, 'nothing left due in the bucket');
      }
      verifySame([...owner.keys()].sort(), [...ids].sort(), 'the buckets together hold every task');
      verify(new Set(owner.values()).size > 1, 'tasks are spread over more than one bucket');
    },
  );

  bucketCase(
    'claimBucket leaves the kinds it is asked to skip alone: not claimed, no attempt counted',
    async (_ctx, source) => {
      const layout = await source.declareLeaseLayout({ mode: 'bucket', buckets: 1 });
      const limited = await source.enqueue(Array.from({ length: 4 }, () => ({ kind: 'partner-api' })));
      const others = await source.enqueue(Array.from({ length: 4 }, () => ({ kind: 'other' })));
      const lease = leaseOf(layout, 0, 5);
      const first = await source.claimBucket(lease, 'w', 100, { skipKinds: ['partner-api', 'unknown'] });
      verify(first.ok, `claimBucket refused: ${JSON.stringify(first)}`);
      verifySame(
        first.tasks.map((task) => task.id).sort(),
        [...others].sort(),
        'only the tasks of kinds not skipped are claimed',
      );
      for (const id of limited) {
        const task = await must(source, id);
        verifyEqual(task.status, 'pending', `skipped task ${id} stays pending`);
        verifyEqual(task.attempts, 0, `skipped task ${id} has no attempt counted`);
      }
      const rest = await claimed(source, lease, 'w', 100);
      verifySame(
        rest.map((task) => task.id).sort(),
        [...limited].sort(),
        'without skipKinds the next claim takes them',
      );
      await verifyRejects(
        source.claimBucket(lease, 'w', 10, { skipKinds: 'partner-api' as unknown as string[] }),
        'INVALID_ARGUMENT',
        'skipKinds that is not an array',
      );
    },
  );

  bucketCase(
    'dueBuckets names exactly the buckets a claim would take something from',
    async (_ctx, source) => {
      const layout = await source.declareLeaseLayout({ mode: 'bucket', buckets: 8 });
      const all = [0, 1, 2, 3, 4, 5, 6, 7];
      verifySame(await source.dueBuckets(layout, all), [], 'an empty table');
      await enqueueMany(source, 12);
      await source.enqueue({ kind: 'later', runAt: new Date('9000-01-01T00:00:00Z') });
      const due = await source.dueBuckets(layout, all);
      verify(due.length > 0, 'some bucket holds a due task');
      for (const bucket of all) {
        const tasks = await claimed(source, leaseOf(layout, bucket, 3), 'w', 100);
        verifyEqual(due.includes(bucket), tasks.length > 0, `bucket ${bucket}: named due vs claimable`);
      }
      verifySame(
        await source.dueBuckets(layout, all),
        [],
        'every due task claimed (running under its lease): none due',
      );
    },
  );

  bucketCase(
    'a newer lease takes running tasks over at once; the older lease can write nothing',
    async (_ctx, source) => {
      const layout = await source.declareLeaseLayout({ mode: 'bucket', buckets: 1 });
      const [a, b, c] = await enqueueMany(source, 3);
      const old = leaseOf(layout, 0, 5);
      const mine = await claimed(source, old, 'old', 2);
      verifyEqual(mine.length, 2, 'the old lease claims two tasks');
      const newer = leaseOf(layout, 0, 9);
      const taken = await claimed(source, newer, 'new', 10);
      verifySame(
        taken.map((t) => t.id).sort(),
        [a, b, c].sort(),
        'the newer lease gets every task, running ones too',
      );
      for (const task of taken) {
        const before = mine.find((t) => t.id === task.id);
        if (before) verify(task.fence! > before.fence!, 'a takeover gets a higher token');
      }
      verifySame(
        await source.claimBucket(old, 'old', 10),
        { ok: false, reason: 'stale' },
        'the old lease claims',
      );
      const settled = await source.settle(
        old,
        mine.map((task) => ({
          taskId: task.id,
          fence: task.fence!,
          kind: 'complete' as const,
          result: 'late',
        })),
      );
      verifySame(
        settled,
        { ok: false, reason: 'stale' },
        'the old lease settles its tasks after the takeover',
      );
      for (const task of taken) verifyEqual((await must(source, task.id)).status, 'running', 'still running');
    },
  );

  bucketCase(
    'settle writes many outcomes in one call, each only with its exact token',
    async (_ctx, source) => {
      const layout = await source.declareLeaseLayout({ mode: 'bucket', buckets: 1 });
      await source.enqueue(
        Array.from({ length: 5 }, (_, n) => ({ kind: 'job', payload: { n }, maxAttempts: 3 })),
      );
      const lease = leaseOf(layout, 0, 3);
      const tasks = await claimed(source, lease, 'w', 5);
      verifyEqual(tasks.length, 5, 'claimed');
      const [t1, t2, t3, t4, t5] = tasks as [Task, Task, Task, Task, Task];
      const unclaimed = (await source.enqueue({ kind: 'job' }))[0]!;
      const result = await source.settle(lease, [
        { taskId: t1.id, fence: t1.fence!, kind: 'complete', result: { ok: 1 } },
        { taskId: t2.id, fence: t2.fence!, kind: 'fail', failure: { message: 'try again' } },
        {
          taskId: t3.id,
          fence: t3.fence!,
          kind: 'fail',
          failure: { message: 'bad input', retryable: false },
        },
        { taskId: t4.id, fence: t4.fence!, kind: 'release' },
        { taskId: t5.id, fence: t5.fence! - 1, kind: 'complete', result: 'wrong token' },
        { taskId: unclaimed, fence: t1.fence!, kind: 'complete', result: 'never claimed' },
      ]);
      verify(result.ok, `settle refused: ${JSON.stringify(result)}`);
      const statuses = result.results.map((r) => (r.applied ? r.status : r.reason));
      verifySame(statuses, ['done', 'failed', 'dead', 'pending', 'stale', 'stale'], 'results in input order');
      const failed = result.results[1]!;
      verify(failed.applied && failed.nextRunAt instanceof Date, 'a retryable failure reports nextRunAt');
      const done = await must(source, t1.id);
      verifySame([done.status, done.result], ['done', { ok: 1 }], 'completed with its result');
      const retry = await must(source, t2.id);
      verifySame([retry.status, retry.lastError], ['failed', 'try again'], 'failed, error kept');
      verifyEqual((await must(source, t3.id)).status, 'dead', 'a non-retryable failure is dead');
      const released = await must(source, t4.id);
      verifySame([released.status, released.attempts], ['pending', 0], 'a release gives the attempt back');
      verifyEqual((await must(source, t5.id)).status, 'running', 'a wrong token changes nothing');
      verifyEqual((await must(source, unclaimed)).status, 'pending', 'an unclaimed task is untouched');
      const again = await claimed(source, lease, 'w', 10);
      verifySame(
        again.map((t) => t.id).sort(),
        [t4.id, unclaimed].sort(),
        'the released task is due again; running, done, dead and backing-off ones are not',
      );
    },
  );

  bucketCase(
    "settleBuckets (where implemented) writes several buckets' outcomes; a stale lease refuses only its own batch",
    async (_ctx, source) => {
      if (!source.settleBuckets) return;
      const layout = await source.declareLeaseLayout({ mode: 'bucket', buckets: 4 });
      await enqueueMany(source, 80);
      const leases = [0, 1, 2].map((bucket) => leaseOf(layout, bucket, 7));
      const mine = await Promise.all(leases.map((lease) => claimed(source, lease, 'old', 100)));
      verify(
        mine.every((tasks) => tasks.length > 0),
        `80 tasks over 4 buckets left one of buckets 0-2 empty: ${mine.map((t) => t.length)}`,
      );
      // A newer lease of bucket 1 claims (and so takes over) its tasks.
      const newer = leaseOf(layout, 1, 8);
      const taken = await claimed(source, newer, 'new', 100);
      const complete = (task: Task) => ({
        taskId: task.id,
        fence: task.fence!,
        kind: 'complete' as const,
        result: 'old',
      });
      const results = await source.settleBuckets(
        leases.map((lease, i) => ({ lease, settlements: mine[i]!.map(complete) })),
      );
      verifyEqual(results.length, 3, 'a result per batch');
      for (const i of [0, 2]) {
        const result = results[i]!;
        verify(result.ok, `bucket ${i} refused: ${JSON.stringify(result)}`);
        verify(
          result.results.every((r) => r.applied && r.status === 'done'),
          `bucket ${i}: every outcome applies`,
        );
        for (const task of mine[i]!) verifyEqual((await must(source, task.id)).status, 'done', 'done');
      }
      verifySame(results[1], { ok: false, reason: 'stale' }, 'the batch of the bucket a newer lease claimed');
      for (const task of taken) {
        const now = await must(source, task.id);
        verifySame([now.status, now.fence], ['running', task.fence], 'still the newer lease’s claim');
      }
      await verifyRejects(
        source.settleBuckets([
          { lease: leases[0]!, settlements: [] },
          { lease: { ...leases[0]!, fence: 9 }, settlements: [] },
        ]),
        'INVALID_ARGUMENT',
        'one bucket in two batches',
      );
    },
  );

  bucketCase('a task retried inside one lease is claimed again with a higher token', async (ctx, source) => {
    const layout = await source.declareLeaseLayout({ mode: 'bucket', buckets: 1 });
    const [id] = await source.enqueue({ kind: 'job', maxAttempts: 3 });
    const lease = leaseOf(layout, 0, 4);
    const [first] = await claimed(source, lease, 'w', 1);
    verify(first, 'first claim');
    const failed = await source.settle(lease, [
      { taskId: id!, fence: first.fence!, kind: 'fail', failure: { message: 'flaky' } },
    ]);
    verify(failed.ok && failed.results[0]!.applied, 'the failure is written');
    await ctx.harness.elapse(ctx.settings.backoff.maxMs * 2, [id!]);
    const [second] = await claimed(source, lease, 'w', 1);
    verify(second !== undefined && second.id === id, 'the retry is claimed under the same lease');
    verify(second.fence! > first.fence!, `a retry gets a higher token (${first.fence} then ${second.fence})`);
    verifyEqual(second.attempts, 2, 'attempts');
    const stale = await source.settle(lease, [
      { taskId: id!, fence: first.fence!, kind: 'complete', result: 'from the first attempt' },
    ]);
    verifySame(
      stale,
      { ok: true, results: [{ applied: false, reason: 'stale' }] },
      'the first attempt completes',
    );
    const ok = await source.settle(lease, [
      { taskId: id!, fence: second.fence!, kind: 'complete', result: 2 },
    ]);
    verifySame(
      ok,
      { ok: true, results: [{ applied: true, status: 'done' }] },
      'the second attempt completes',
    );
  });

  bucketCase(
    "running tasks of the lease's own claims come back only after the reclaim threshold",
    async (ctx, source) => {
      const layout = await source.declareLeaseLayout({ mode: 'bucket', buckets: 1 });
      const ids = await enqueueMany(source, 2);
      const lease = leaseOf(layout, 0, 4);
      const first = await claimed(source, lease, 'w', 10);
      verifyEqual(first.length, 2, 'claimed');
      verifyEqual(
        (await claimed(source, lease, 'w', 10)).length,
        0,
        'running tasks of this lease are not claimed',
      );
      await ctx.harness.elapse(ctx.settings.reclaimAfterMs + 1_000, ids);
      const again = await claimed(source, lease, 'w', 10);
      verifySame(
        again.map((t) => t.id).sort(),
        [...ids].sort(),
        'after the threshold they are claimed again',
      );
      verifyEqual(again[0]!.attempts, 2, 'the reclaim counts an attempt');
    },
  );

  bucketCase('a task abandoned in its final attempt is buried, not run again', async (_ctx, source) => {
    const layout = await source.declareLeaseLayout({ mode: 'bucket', buckets: 1 });
    const [id] = await source.enqueue({ kind: 'job', maxAttempts: 1 });
    verifyEqual((await claimed(source, leaseOf(layout, 0, 1), 'gone', 1)).length, 1, 'claimed');
    const takeover = await source.claimBucket(leaseOf(layout, 0, 2), 'next', 10);
    verify(takeover.ok, 'the next lease claims');
    verifySame([takeover.tasks.length, takeover.buried], [0, 1], 'nothing to run, one buried');
    const task = await must(source, id!);
    verifyEqual(task.status, 'dead', 'status');
    verify(/abandoned/.test(task.lastError ?? ''), `lastError says why: ${task.lastError}`);
  });

  bucketCase(
    'every write checks the layout: workers of another layout write nothing',
    async (_ctx, source) => {
      const layout = await source.declareLeaseLayout({ mode: 'bucket', buckets: 2 });
      const [id] = await source.enqueue({ kind: 'job' });
      verifySame(
        await source.claimBucket({ ...leaseOf(layout, 0, 1), buckets: 4 }, 'w', 10),
        { ok: false, reason: 'layout' },
        'a claim with another bucket count',
      );
      verifySame(
        await source.claimBucket({ ...leaseOf(layout, 0, 1), epoch: layout.epoch + 1 }, 'w', 10),
        { ok: false, reason: 'layout' },
        'a claim with another epoch',
      );
      verifySame(
        await source.claim(id!, 1_000, 'w'),
        { claimed: false, reason: 'layout' },
        'an unguarded per-task claim',
      );
      verifySame(
        await source.claim(id!, 1_000, 'w', { epoch: layout.epoch }),
        { claimed: false, reason: 'layout' },
        'a per-task claim under a bucket layout',
      );
      verifyEqual((await must(source, id!)).status, 'pending', 'refused writes change nothing');
    },
  );

  bucketCase(
    'a layout change waits for running tasks, bumps the epoch and locks the old workers out',
    async (_ctx, source) => {
      const buckets = await source.declareLeaseLayout({ mode: 'bucket', buckets: 1 });
      const [id] = await source.enqueue({ kind: 'job' });
      const lease = leaseOf(buckets, 0, 50);
      const [task] = await claimed(source, lease, 'w', 1);
      verify(task, 'claimed');
      await verifyRejects(
        source.changeLeaseLayout({ mode: 'task' }),
        'INVALID_ARGUMENT',
        'a change while running',
      );
      const forced = await source.changeLeaseLayout({ mode: 'task', locks: 'other-locks' }, { force: true });
      verifySame(
        [forced.mode, forced.buckets, forced.locks],
        ['task', null, 'other-locks'],
        'the new layout',
      );
      verify(forced.epoch > buckets.epoch, 'the epoch rises');
      verifySame(
        await source.settle(lease, [{ taskId: id!, fence: task.fence!, kind: 'complete', result: 'late' }]),
        { ok: false, reason: 'layout' },
        'the old lease settles after the change',
      );
      // The per-task lock's fence comes from another counter: lower than the token, and still a valid claim.
      const claim = await source.claim(id!, 1, 'task-worker', { epoch: forced.epoch });
      verify(claim.claimed, `a task-mode claim takes over the running task: ${JSON.stringify(claim)}`);
      verifySame(
        await source.complete(id!, 1, 'done', { epoch: buckets.epoch }),
        { applied: false, reason: 'layout' },
        'a write guarded by the old epoch',
      );
      verifySame(
        await source.complete(id!, 1, 'done', { epoch: forced.epoch }),
        { applied: true },
        'the new one',
      );
      // Back to buckets, on a lock backend whose counters start low: the bucket's old lock fence (50) is
      // another counter's and must not lock the new one (fence 1) out.
      const back = await source.changeLeaseLayout({ mode: 'bucket', buckets: 1 });
      const [again] = await source.enqueue({ kind: 'job' });
      const next = await claimed(source, leaseOf(back, 0, 1), 'w', 10);
      verifySame(
        next.map((t) => t.id),
        [again],
        'after switching back, a lock fence of 1 claims',
      );
      verify(next[0]!.fence! > task.fence!, 'claim tokens keep rising across layout changes');
    },
  );
}

function leaseOf(layout: LeaseLayout, bucket: number, fence: number): BucketLeaseRef {
  return { epoch: layout.epoch, buckets: layout.buckets ?? 1, bucket, fence };
}

async function claimed(
  source: BucketTaskSource,
  lease: BucketLeaseRef,
  workerId: string,
  limit: number,
): Promise<Task[]> {
  const result = await source.claimBucket(lease, workerId, limit);
  verify(result.ok, `claimBucket(${JSON.stringify(lease)}) refused: ${JSON.stringify(result)}`);
  return [...result.tasks];
}
