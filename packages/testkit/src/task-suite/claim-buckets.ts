import {
  type BucketClaimResult,
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
 * `claimBuckets`, the optional claim across several held bucket leases in one operation: each lease decided
 * on its own exactly as `claimBucket` would decide it (a stale or wrong-layout lease refuses its own bucket
 * only), every task claimed under its own bucket's lease, and the limit shared by the whole call, the leases
 * served in input order. Each case passes at once for a source without `claimBuckets`.
 */
export function claimBucketsTests(
  test: TestFn,
  factory: TaskSourceFactory,
  options: TaskSuiteOptions = {},
): void {
  const claimCase = (
    name: string,
    body: (
      ctx: TaskCase,
      source: BucketTaskSource & Required<Pick<BucketTaskSource, 'claimBuckets'>>,
    ) => Promise<void>,
  ) =>
    defineTaskCase(
      test,
      factory,
      options,
      `buckets: claimBuckets (where implemented) ${name}`,
      async (ctx) => {
        verify(isBucketTaskSource(ctx.source), 'the source does not implement the bucket operations');
        const source = ctx.source;
        if (!source.claimBuckets) return;
        await body(ctx, source as BucketTaskSource & Required<Pick<BucketTaskSource, 'claimBuckets'>>);
      },
    );

  claimCase(
    'takes due tasks across buckets in one call, each under its own lease, the limit shared in input order',
    async (_ctx, source) => {
      const layout = await source.declareLeaseLayout({ mode: 'bucket', buckets: 8 });
      await enqueueMany(source, 120);
      const bucketOf = await bucketsOfTasks(source, layout);
      const order = [5, 2, 7, 0];
      const due = order.map((bucket) => idsIn(bucketOf, bucket));
      verify(
        due.every((ids) => ids.length > 1),
        `120 tasks over 8 buckets left one of ${order} with fewer than 2: ${due.map((ids) => ids.length)}`,
      );
      const leases = order.map((bucket, i) => leaseOf(layout, bucket, 10 + i));
      // The limit runs out inside the third bucket: the first two give all theirs, the fourth nothing.
      const limit = due[0]!.length + due[1]!.length + 1;
      const results = await source.claimBuckets(leases, 'w', limit);
      verifyEqual(results.length, leases.length, 'a result per lease');
      const claimed = results.map((result, i) => okTasks(result, `lease of bucket ${order[i]}`));
      verifySame(
        claimed.map((tasks) => tasks.length),
        [due[0]!.length, due[1]!.length, 1, 0],
        `tasks per lease with a limit of ${limit} (the leases served in input order)`,
      );
      const tokens = new Set<number>();
      claimed.forEach((tasks, i) => {
        for (const task of tasks) {
          verifyEqual(
            bucketOf.get(task.id),
            order[i],
            `task ${task.id} claimed under bucket ${order[i]}'s lease`,
          );
          verifySame(
            [task.status, task.attempts, task.workerId],
            ['running', 1, 'w'],
            `claimed task ${task.id} (status, attempts, worker)`,
          );
          verify(task.fence !== null && task.fence > 0, 'a claim token is a positive number');
          tokens.add(task.fence);
        }
      });
      // Every claim is the lease's own: settled under that lease, it applies.
      const settled = await Promise.all(
        claimed.map((tasks, i) =>
          source.settle(
            leases[i]!,
            tasks.map((task) => ({
              taskId: task.id,
              fence: task.fence!,
              kind: 'complete' as const,
              result: i,
            })),
          ),
        ),
      );
      settled.forEach((result, i) => {
        verify(
          result.ok && result.results.every((r) => r.applied && r.status === 'done'),
          `settling bucket ${order[i]}'s claims under its own lease: ${JSON.stringify(result)}`,
        );
      });
      const rest = await source.claimBuckets(leases, 'w', 1_000);
      const restTasks = rest.map((result, i) => okTasks(result, `second claim, bucket ${order[i]}`));
      const left2 = due[2]!.filter((id) => !claimed[2]!.some((t) => t.id === id));
      verifySame(
        restTasks.map((tasks) => tasks.map((t) => t.id).sort()),
        [[], [], left2.sort(), due[3]!.slice().sort()],
        'a second call takes exactly what the limit left (each task once)',
      );
      const highest = Math.max(...tokens);
      for (const task of restTasks.flat()) {
        verify(task.fence! > highest, `a later claim gets a higher token (${task.fence} after ${highest})`);
      }
      verifySame(await source.claimBuckets([], 'w', 10), [], 'an empty list of leases claims nothing');
    },
  );

  claimCase(
    'refuses a stale lease for its own bucket only; a newer lease in the call takes its bucket over',
    async (_ctx, source) => {
      const layout = await source.declareLeaseLayout({ mode: 'bucket', buckets: 4 });
      await enqueueMany(source, 80);
      const bucketOf = await bucketsOfTasks(source, layout);
      verify(
        [0, 1, 2, 3].every((bucket) => idsIn(bucketOf, bucket).length > 0),
        'every bucket holds a task',
      );
      // A newer holder of bucket 1 claims first.
      const newer = await source.claimBucket(leaseOf(layout, 1, 9), 'new', 1_000);
      const newerTasks = okTasks(newer, 'the newer lease of bucket 1');
      verifyEqual(newerTasks.length, idsIn(bucketOf, 1).length, 'the newer lease takes bucket 1');
      const old = [0, 1, 2].map((bucket) => leaseOf(layout, bucket, 7));
      const results = await source.claimBuckets(old, 'old', 1_000);
      verifySame(results[1], { ok: false, reason: 'stale' }, 'the stale lease of bucket 1');
      for (const i of [0, 2]) {
        verifySame(
          okTasks(results[i]!, `bucket ${i}`)
            .map((t) => t.id)
            .sort(),
          idsIn(bucketOf, i).sort(),
          `bucket ${i} claims every due task although bucket 1's lease is stale`,
        );
      }
      for (const task of newerTasks) {
        const now = await must(source, task.id);
        verifySame(
          [now.status, now.fence, now.workerId],
          ['running', task.fence, 'new'],
          'still the newer claim',
        );
      }
      // A newer lease given in a call takes its bucket's running tasks over, even past a stale neighbour.
      const takeover = await source.claimBuckets(
        [leaseOf(layout, 1, 10), leaseOf(layout, 3, 1)],
        'next',
        1_000,
      );
      const taken = okTasks(takeover[0]!, 'the newest lease of bucket 1');
      verifySame(taken.map((t) => t.id).sort(), idsIn(bucketOf, 1).sort(), 'bucket 1 taken over');
      for (const task of taken) {
        const before = newerTasks.find((t) => t.id === task.id)!;
        verify(task.fence! > before.fence!, 'a takeover gets a higher token');
      }
      verifySame(
        await source.claimBucket(leaseOf(layout, 1, 9), 'new', 10),
        { ok: false, reason: 'stale' },
        'the lease it replaced claims',
      );
      verifySame(
        await source.settle(
          leaseOf(layout, 1, 9),
          newerTasks.map((t) => ({
            taskId: t.id,
            fence: t.fence!,
            kind: 'complete' as const,
            result: 'late',
          })),
        ),
        { ok: false, reason: 'stale' },
        'the lease it replaced settles',
      );
    },
  );

  claimCase(
    'checks the layout and its arguments: leases of another layout claim nothing',
    async (_ctx, source) => {
      const layout = await source.declareLeaseLayout({ mode: 'bucket', buckets: 2 });
      const ids = await enqueueMany(source, 10);
      verifySame(
        await source.claimBuckets(
          [0, 1].map((bucket) => ({ ...leaseOf(layout, bucket, 1), epoch: layout.epoch + 1 })),
          'w',
          10,
        ),
        [
          { ok: false, reason: 'layout' },
          { ok: false, reason: 'layout' },
        ],
        'leases of another epoch',
      );
      verifySame(
        await source.claimBuckets(
          [0, 3].map((bucket) => ({ ...leaseOf(layout, bucket, 1), buckets: 4 })),
          'w',
          10,
        ),
        [
          { ok: false, reason: 'layout' },
          { ok: false, reason: 'layout' },
        ],
        'leases of another bucket count',
      );
      for (const id of ids)
        verifyEqual((await must(source, id)).status, 'pending', 'refused claims change nothing');
      const lease = leaseOf(layout, 0, 1);
      await verifyRejects(
        source.claimBuckets([lease, { ...lease, fence: 2 }], 'w', 10),
        'INVALID_ARGUMENT',
        'one bucket twice',
      );
      await verifyRejects(
        source.claimBuckets([lease, { ...leaseOf(layout, 1, 1), buckets: 4 }], 'w', 10),
        'INVALID_ARGUMENT',
        'leases of two layouts',
      );
      await verifyRejects(source.claimBuckets([lease], 'w', 0), 'INVALID_ARGUMENT', 'a limit of 0');
      await verifyRejects(
        source.claimBuckets(lease as unknown as BucketLeaseRef[], 'w', 10),
        'INVALID_ARGUMENT',
        'leases that are not an array',
      );
    },
  );

  claimCase('leaves the kinds it is asked to skip alone, in every bucket', async (_ctx, source) => {
    const layout = await source.declareLeaseLayout({ mode: 'bucket', buckets: 2 });
    const limited = await enqueueMany(source, 20, 'partner-api');
    const others = await enqueueMany(source, 20, 'other');
    const leases = [leaseOf(layout, 0, 3), leaseOf(layout, 1, 3)];
    const results = await source.claimBuckets(leases, 'w', 1_000, { skipKinds: ['partner-api'] });
    verifySame(
      results.flatMap((r, i) => okTasks(r, `bucket ${i}`).map((t) => t.id)).sort(),
      [...others].sort(),
      'only tasks of kinds not skipped are claimed',
    );
    for (const id of limited) {
      const task = await must(source, id);
      verifySame([task.status, task.attempts], ['pending', 0], `skipped task ${id}: pending, no attempt`);
    }
    const rest = await source.claimBuckets(leases, 'w', 1_000);
    verifySame(
      rest.flatMap((r, i) => okTasks(r, `bucket ${i}`).map((t) => t.id)).sort(),
      [...limited].sort(),
      'without skipKinds the next call takes them',
    );
    await verifyRejects(
      source.claimBuckets(leases, 'w', 10, { skipKinds: 'partner-api' as unknown as string[] }),
      'INVALID_ARGUMENT',
      'skipKinds that is not an array',
    );
  });

  claimCase(
    'claims a retried task again under the same lease with a higher token; buries abandoned final attempts',
    async (ctx, source) => {
      const layout = await source.declareLeaseLayout({ mode: 'bucket', buckets: 2 });
      const retried = await source.enqueue(
        Array.from({ length: 12 }, () => ({ kind: 'job', maxAttempts: 3 })),
      );
      const bucketOf = await bucketsOfTasks(source, layout);
      verify(
        idsIn(bucketOf, 0).length > 0 && idsIn(bucketOf, 1).length > 0,
        '12 tasks over 2 buckets left one empty',
      );
      const leases = [leaseOf(layout, 0, 4), leaseOf(layout, 1, 4)];
      const first = (await source.claimBuckets(leases, 'w', 1_000)).map((r, i) => okTasks(r, `bucket ${i}`));
      const failed = await Promise.all(
        first.map((tasks, i) =>
          source.settle(
            leases[i]!,
            tasks.map((t) => ({
              taskId: t.id,
              fence: t.fence!,
              kind: 'fail' as const,
              failure: { message: 'flaky' },
            })),
          ),
        ),
      );
      verify(
        failed.every((r) => r.ok && r.results.every((x) => x.applied && x.status === 'failed')),
        `the failures are written: ${JSON.stringify(failed)}`,
      );
      await ctx.harness.elapse(ctx.settings.backoff.maxMs * 2, retried);
      const second = (await source.claimBuckets(leases, 'w', 1_000)).map((r, i) =>
        okTasks(r, `bucket ${i}, retry`),
      );
      const highest = Math.max(...first.flat().map((t) => t.fence!));
      second.forEach((tasks, i) => {
        verifySame(
          tasks.map((t) => t.id).sort(),
          first[i]!.map((t) => t.id).sort(),
          `bucket ${i}: the retries are claimed again under the same lease`,
        );
        for (const task of tasks) {
          verifyEqual(task.attempts, 2, `attempts of ${task.id}`);
          verify(
            task.fence! > highest,
            `a retry gets a token above every earlier one (${task.fence} ≤ ${highest})`,
          );
        }
      });
      const stale = await source.settle(leases[0]!, [
        { taskId: first[0]![0]!.id, fence: first[0]![0]!.fence!, kind: 'complete', result: 'first attempt' },
      ]);
      verifySame(
        stale,
        { ok: true, results: [{ applied: false, reason: 'stale' }] },
        'the first attempt completes',
      );

      // The worker holding the leases dies in the tasks' final attempt: the next leases bury them.
      const [doomed] = await source.enqueue({ kind: 'job', maxAttempts: 1 });
      const third = await source.claimBuckets(leases, 'w', 1_000);
      const doomedBucket = third.findIndex((r) => r.ok && r.tasks.some((t) => t.id === doomed));
      verify(doomedBucket >= 0, 'the new task is claimed under the lease of its bucket');
      const next = await source.claimBuckets([leaseOf(layout, 0, 5), leaseOf(layout, 1, 5)], 'next', 1_000);
      const buried = next.map((r, i) => {
        verify(r.ok, `bucket ${i} refused: ${JSON.stringify(r)}`);
        return r.buried;
      });
      verifyEqual(
        buried[doomedBucket],
        1,
        'the abandoned final attempt is buried under its own bucket’s lease',
      );
      verifyEqual(buried[1 - doomedBucket], 0, 'nothing is buried under the other lease');
      const task = await must(source, doomed!);
      verify(
        task.status === 'dead' && /abandoned/.test(task.lastError ?? ''),
        `buried: ${JSON.stringify(task)}`,
      );
    },
  );
}

function leaseOf(layout: LeaseLayout, bucket: number, fence: number): BucketLeaseRef {
  return { epoch: layout.epoch, buckets: layout.buckets ?? 1, bucket, fence };
}

function okTasks(result: BucketClaimResult, what: string): Task[] {
  verify(result?.ok, `${what}: refused: ${JSON.stringify(result)}`);
  return [...result.tasks];
}

function idsIn(bucketOf: ReadonlyMap<string, number>, bucket: number): string[] {
  return [...bucketOf].filter(([, b]) => b === bucket).map(([id]) => id);
}

/**
 * The bucket of every due task, learnt through the contract alone: each bucket is claimed under a lease of
 * fence 1 and its claims released again (pending, attempt given back). Leaves every bucket's stored fence at 1.
 */
async function bucketsOfTasks(source: BucketTaskSource, layout: LeaseLayout): Promise<Map<string, number>> {
  const bucketOf = new Map<string, number>();
  for (let bucket = 0; bucket < (layout.buckets ?? 1); bucket++) {
    const lease = leaseOf(layout, bucket, 1);
    const claimed = await source.claimBucket(lease, 'survey', 10_000);
    const tasks = okTasks(claimed, `surveying bucket ${bucket}`);
    for (const task of tasks) bucketOf.set(task.id, bucket);
    const released = await source.settle(
      lease,
      tasks.map((task) => ({ taskId: task.id, fence: task.fence!, kind: 'release' as const })),
    );
    verify(
      released.ok && released.results.every((r) => r.applied),
      `releasing the survey claims of bucket ${bucket}: ${JSON.stringify(released)}`,
    );
  }
  return bucketOf;
}
