import {
  type BucketClaimOptions,
  type BucketClaimResult,
  type BucketClaimsResult,
  type BucketLeaseRef,
  type BucketSettlements,
  type ClaimResult,
  type CompleteResult,
  type DueOptions,
  type DueTask,
  type EnqueueResult,
  type FailResult,
  ManualClock,
  MemoryTaskSource,
  type MemoryTaskSourceOptions,
  type NewTask,
  type Settlement,
  type SettleResult,
  type TaskFailure,
  type WorkerRecord,
} from '@baton/core';
import { describe, expect, it } from 'vitest';
import {
  bucketTests,
  claimBucketsTests,
  claimTests,
  dueTests,
  enqueueTests,
  fencedWriteTests,
  heartbeatTests,
  raceTests,
  retryTests,
  type TaskSourceFactory,
  type TaskSourceHarness,
  type TaskSourceSettings,
  type TestFn,
  taskSourceSuite,
} from '../src/index.js';

type SourceClass = new (options: MemoryTaskSourceOptions) => MemoryTaskSource;

/** The in-memory reference source on a manual clock: `elapse` advances the clock (every task ages). */
function memoryFactory(Source: SourceClass = MemoryTaskSource, tweak: Partial<MemoryTaskSourceOptions> = {}) {
  return async (settings: TaskSourceSettings): Promise<TaskSourceHarness> => {
    const clock = new ManualClock();
    const { baseMs, maxMs } = settings.backoff;
    const source = new Source({
      clock,
      reclaimAfterMs: settings.reclaimAfterMs,
      defaultMaxAttempts: settings.defaultMaxAttempts,
      retryDelayMs: (attempts) => Math.min(maxMs, baseMs * 2 ** (attempts - 1)),
      ...tweak,
    });
    return { source, elapse: (ms) => clock.advance(ms), close: () => source.close() };
  };
}

/** A complete that writes under whatever fence the task has now. */
class CompleteIgnoresFence extends MemoryTaskSource {
  override async complete(id: string, _fence: number, result?: unknown): Promise<CompleteResult> {
    const task = await this.get(id);
    return super.complete(id, task?.fence ?? 0, result);
  }
}

/** A fail that writes under whatever fence the task has now. */
class FailIgnoresFence extends MemoryTaskSource {
  override async fail(id: string, _fence: number, failure: TaskFailure): Promise<FailResult> {
    const task = await this.get(id);
    return super.fail(id, task?.fence ?? 0, failure);
  }
}

/** A claim that ignores the fence order (always outbids the stored fence). */
class ClaimIgnoresFence extends MemoryTaskSource {
  override async claim(id: string, fence: number, workerId: string): Promise<ClaimResult> {
    const task = await this.get(id);
    return super.claim(id, Math.max(fence, (task?.fence ?? 0) + 1), workerId);
  }
}

/** Every failure is treated as retryable. */
class AlwaysRetry extends MemoryTaskSource {
  override fail(id: string, fence: number, failure: TaskFailure): Promise<FailResult> {
    return super.fail(id, fence, { ...failure, retryable: true });
  }
}

/** Lists every task twice per pass. */
class DueTwice extends MemoryTaskSource {
  override async *due(options: DueOptions = {}): AsyncGenerator<DueTask> {
    yield* super.due(options);
    yield* super.due(options);
  }
}

/** Starts where `start` points but never wraps around. */
class DueNoWrap extends MemoryTaskSource {
  override async *due(options: DueOptions = {}): AsyncGenerator<DueTask> {
    const all: DueTask[] = [];
    for await (const task of super.due({ ...options, start: 0 })) all.push(task);
    yield* all.slice(Math.floor((options.start ?? 0) * all.length));
  }
}

/** Always starts at the first task, whatever `start` says. */
class DueIgnoresStart extends MemoryTaskSource {
  override due(options: DueOptions = {}): AsyncGenerator<DueTask> {
    return super.due({ ...options, start: 0 });
  }
}

/** Lists done tasks too. */
class DueListsDone extends MemoryTaskSource {
  override async *due(options: DueOptions = {}): AsyncGenerator<DueTask> {
    yield* super.due(options);
    for (const task of this.tasks()) if (task.status === 'done') yield { ...task, dueKey: `done:${task.id}` };
  }
}

/** Gives every task the same due key. */
class DueKeyShared extends MemoryTaskSource {
  override async *due(options: DueOptions = {}): AsyncGenerator<DueTask> {
    for await (const task of super.due(options)) yield { ...task, dueKey: 'k' };
  }
}

/** Due keys that fall as the pass walks forward (each digit mirrored). */
class DueKeyReversed extends MemoryTaskSource {
  override async *due(options: DueOptions = {}): AsyncGenerator<DueTask> {
    for await (const task of super.due(options)) {
      yield { ...task, dueKey: task.dueKey.replace(/[0-9]/g, (digit) => String(9 - Number(digit))) };
    }
  }
}

/** A task's due key depends on where the pass started. */
class DueKeyPerPass extends MemoryTaskSource {
  override async *due(options: DueOptions = {}): AsyncGenerator<DueTask> {
    let n = 0;
    for await (const task of super.due(options)) yield { ...task, dueKey: String(n++).padStart(8, '0') };
  }
}

/** A batch settle that writes under whatever token each task has now (the batch complete ignores the fence). */
class SettleIgnoresToken extends MemoryTaskSource {
  override async settle(lease: BucketLeaseRef, items: readonly Settlement[]): Promise<SettleResult> {
    const current = await Promise.all(items.map((item) => this.get(item.taskId)));
    return super.settle(
      lease,
      items.map((item, i) => ({ ...item, fence: current[i]?.fence ?? item.fence })),
    );
  }
}

/** A bucket claim that lets any lease in, however old (no newest-fence check). */
class ClaimBucketIgnoresLeaseFence extends MemoryTaskSource {
  #highest = 0;
  override claimBucket(lease: BucketLeaseRef, workerId: string, limit: number): Promise<BucketClaimResult> {
    this.#highest = Math.max(this.#highest + 1, lease.fence);
    return super.claimBucket({ ...lease, fence: this.#highest }, workerId, limit);
  }
  override settle(lease: BucketLeaseRef, items: readonly Settlement[]): Promise<SettleResult> {
    return super.settle({ ...lease, fence: this.#highest }, items);
  }
}

/** A multi-bucket settle that writes every batch under its bucket's newest lease, not the batch's own. */
class SettleBucketsIgnoresLease extends MemoryTaskSource {
  readonly #newest = new Map<number, number>();
  override claimBucket(lease: BucketLeaseRef, workerId: string, limit: number): Promise<BucketClaimResult> {
    this.#newest.set(lease.bucket, Math.max(this.#newest.get(lease.bucket) ?? 0, lease.fence));
    return super.claimBucket(lease, workerId, limit);
  }
  override settleBuckets(batches: readonly BucketSettlements[]): Promise<SettleResult[]> {
    return super.settleBuckets(
      batches.map((batch) => ({
        ...batch,
        lease: { ...batch.lease, fence: this.#newest.get(batch.lease.bucket) ?? batch.lease.fence },
      })),
    );
  }
}

/** Hands out the lease's fence as every claim's token, so a retry inside one lease reuses it. */
class TokenIsLeaseFence extends MemoryTaskSource {
  readonly #real = new Map<string, number>();
  override async claimBucket(
    lease: BucketLeaseRef,
    workerId: string,
    limit: number,
  ): Promise<BucketClaimResult> {
    const result = await super.claimBucket(lease, workerId, limit);
    if (!result.ok) return result;
    for (const task of result.tasks) this.#real.set(task.id, task.fence!);
    return { ...result, tasks: result.tasks.map((task) => ({ ...task, fence: lease.fence })) };
  }
  override settle(lease: BucketLeaseRef, items: readonly Settlement[]): Promise<SettleResult> {
    return super.settle(
      lease,
      items.map((item) => ({
        ...item,
        fence: item.fence === lease.fence ? (this.#real.get(item.taskId) ?? 0) : item.fence,
      })),
    );
  }
}

/** A bucket claim that does not check the layout (any epoch, any bucket count). */
class ClaimBucketIgnoresLayout extends MemoryTaskSource {
  override async claimBucket(
    lease: BucketLeaseRef,
    workerId: string,
    limit: number,
  ): Promise<BucketClaimResult> {
    const layout = await this.leaseLayout();
    if (layout?.mode !== 'bucket') return super.claimBucket(lease, workerId, limit);
    return super.claimBucket(
      { ...lease, epoch: layout.epoch, buckets: layout.buckets!, bucket: 0 },
      workerId,
      limit,
    );
  }
}

/** A bucket claim that takes every due task, whatever kinds it was asked to skip. */
class ClaimBucketIgnoresSkipKinds extends MemoryTaskSource {
  override claimBucket(lease: BucketLeaseRef, workerId: string, limit: number): Promise<BucketClaimResult> {
    return super.claimBucket(lease, workerId, limit);
  }
}

/** A multi-bucket claim that lets the second lease in however old it is (no newest-fence check for it). */
class ClaimBucketsIgnoresOneFence extends MemoryTaskSource {
  readonly #newest = new Map<number, number>();
  override claimBucket(lease: BucketLeaseRef, workerId: string, limit: number): Promise<BucketClaimResult> {
    this.#newest.set(lease.bucket, Math.max(this.#newest.get(lease.bucket) ?? 0, lease.fence));
    return super.claimBucket(lease, workerId, limit);
  }
  override claimBuckets(
    leases: readonly BucketLeaseRef[],
    workerId: string,
    limit: number,
    options?: BucketClaimOptions,
  ): Promise<BucketClaimsResult> {
    const raised = leases.map((lease, i) => {
      const fence = Math.max(this.#newest.get(lease.bucket) ?? 0, lease.fence);
      this.#newest.set(lease.bucket, fence);
      return i === 1 ? { ...lease, fence } : lease;
    });
    return super.claimBuckets(raised, workerId, limit, options);
  }
}

/** A multi-bucket claim that reports every task under the first lease, whatever bucket it is in. */
class ClaimBucketsUnderFirstLease extends MemoryTaskSource {
  override async claimBuckets(
    leases: readonly BucketLeaseRef[],
    workerId: string,
    limit: number,
    options?: BucketClaimOptions,
  ): Promise<BucketClaimsResult> {
    const results = await super.claimBuckets(leases, workerId, limit, options);
    const tasks = results.flatMap((r) => (r.ok ? r.tasks : []));
    return results.map((r, i) => (r.ok ? { ...r, tasks: i === 0 ? tasks : [] } : r));
  }
}

/** A multi-bucket claim that gives each lease the whole limit (the limit not shared). */
class ClaimBucketsLimitEach extends MemoryTaskSource {
  override claimBuckets(
    leases: readonly BucketLeaseRef[],
    workerId: string,
    limit: number,
    options?: BucketClaimOptions,
  ): Promise<BucketClaimsResult> {
    return Promise.all(leases.map((lease) => this.claimBucket(lease, workerId, limit, options)));
  }
}

/** A multi-bucket claim that stops at the first bucket's end, as a one-bucket claim does. */
class ClaimBucketsStopsAtFirstBucket extends MemoryTaskSource {
  override async claimBuckets(
    leases: readonly BucketLeaseRef[],
    workerId: string,
    limit: number,
    options?: BucketClaimOptions,
  ): Promise<BucketClaimsResult> {
    const [first, ...rest] = leases;
    if (!first) return [];
    const head = await this.claimBucket(first, workerId, limit, options);
    const others = rest.length > 0 ? await super.claimBuckets(rest, workerId, 1, options) : [];
    return [head, ...others.map((r) => (r.ok ? { ...r, tasks: [], buried: 0 } : r))];
  }
}

/** A multi-bucket claim where one stale lease refuses the whole call. */
class ClaimBucketsStaleRefusesAll extends MemoryTaskSource {
  override async claimBuckets(
    leases: readonly BucketLeaseRef[],
    workerId: string,
    limit: number,
    options?: BucketClaimOptions,
  ): Promise<BucketClaimsResult> {
    const probe = await Promise.all(leases.map((lease) => super.claimBuckets([lease], workerId, 1, options)));
    if (probe.some(([r]) => r && !r.ok)) return leases.map(() => ({ ok: false, reason: 'stale' }));
    return super.claimBuckets(leases, workerId, limit, options);
  }
}

/** A multi-bucket claim that does not check the layout (any epoch, any bucket count). */
class ClaimBucketsIgnoresLayout extends MemoryTaskSource {
  override async claimBuckets(
    leases: readonly BucketLeaseRef[],
    workerId: string,
    limit: number,
    options?: BucketClaimOptions,
  ): Promise<BucketClaimsResult> {
    const layout = await this.leaseLayout();
    if (layout?.mode !== 'bucket') return super.claimBuckets(leases, workerId, limit, options);
    const fixed = leases.map((lease, i) => ({
      ...lease,
      epoch: layout.epoch,
      buckets: layout.buckets!,
      bucket: i,
    }));
    return super.claimBuckets(fixed.slice(0, layout.buckets!), workerId, limit, options);
  }
}

/** A multi-bucket claim that takes every due task, whatever kinds it was asked to skip. */
class ClaimBucketsIgnoresSkipKinds extends MemoryTaskSource {
  override claimBuckets(
    leases: readonly BucketLeaseRef[],
    workerId: string,
    limit: number,
  ): Promise<BucketClaimsResult> {
    return super.claimBuckets(leases, workerId, limit);
  }
}

/** A multi-bucket claim that hands out each lease's fence as its tasks' token (a retry reuses it). */
class ClaimBucketsTokenIsLeaseFence extends MemoryTaskSource {
  readonly #real = new Map<string, number>();
  override async claimBuckets(
    leases: readonly BucketLeaseRef[],
    workerId: string,
    limit: number,
    options?: BucketClaimOptions,
  ): Promise<BucketClaimsResult> {
    const results = await super.claimBuckets(leases, workerId, limit, options);
    return results.map((result, i) => {
      if (!result.ok) return result;
      for (const task of result.tasks) this.#real.set(task.id, task.fence!);
      return { ...result, tasks: result.tasks.map((task) => ({ ...task, fence: leases[i]!.fence })) };
    });
  }
  override settle(lease: BucketLeaseRef, items: readonly Settlement[]): Promise<SettleResult> {
    return super.settle(
      lease,
      items.map((item) => ({
        ...item,
        fence: item.fence === lease.fence ? (this.#real.get(item.taskId) ?? 0) : item.fence,
      })),
    );
  }
}

/** Turns `delayMs` into a `runAt` on the caller's clock (the machine running the test, not the source's). */
class DelayOnCallerClock extends MemoryTaskSource {
  override enqueue<P>(tasks: NewTask<P> | readonly NewTask<P>[]): Promise<string[]> {
    const list: readonly NewTask<P>[] = Array.isArray(tasks) ? tasks : [tasks as NewTask<P>];
    return super.enqueue(
      list.map(({ delayMs, ...task }) =>
        delayMs === undefined ? task : { ...task, runAt: new Date(Date.now() + delayMs) },
      ),
    );
  }
}

/** Says every task was added, known idempotency key or not. */
class AlwaysAdded extends MemoryTaskSource {
  override async enqueueWithResults<P>(tasks: NewTask<P> | readonly NewTask<P>[]): Promise<EnqueueResult[]> {
    return (await super.enqueueWithResults(tasks)).map((result) => ({ ...result, added: true }));
  }
}

/** Forgets the previous beat: no rate can be computed. */
class NoPreviousBeat extends MemoryTaskSource {
  override async workers(options?: { limit?: number }): Promise<WorkerRecord[]> {
    return (await super.workers(options)).map((record) => ({ ...record, previous: null }));
  }
}

/** Stamps beats with this process's clock instead of the source's. */
class CallerClockBeats extends MemoryTaskSource {
  override async workers(options?: { limit?: number }): Promise<WorkerRecord[]> {
    return (await super.workers(options)).map((record) => ({ ...record, beatAt: new Date() }));
  }
}

type Group = (test: TestFn, factory: TaskSourceFactory) => void;

/** Runs suite groups against a factory and returns the names of the cases that failed. */
async function failingCases(factory: TaskSourceFactory, groups: Group[]): Promise<string[]> {
  const cases: Array<[string, () => Promise<void>]> = [];
  const collect: TestFn = (name, fn) => {
    cases.push([name, fn]);
  };
  for (const group of groups) group(collect, factory);
  const failed: string[] = [];
  for (const [name, fn] of cases) {
    try {
      await fn();
    } catch {
      failed.push(name);
    }
  }
  return failed;
}

describe('taskSourceSuite against the in-memory reference source', () => {
  taskSourceSuite(it, memoryFactory(), { bucketLeases: true });
});

describe('the task-source suite catches planted faults', () => {
  it('registers every group (30+ cases, window and invalid-row cases only on request)', () => {
    const names: string[] = [];
    const count: TestFn = (name) => {
      names.push(name);
    };
    taskSourceSuite(count, memoryFactory());
    const base = names.length;
    expect(base).toBeGreaterThanOrEqual(30);
    taskSourceSuite(count, memoryFactory(), { creationWindow: true, invalidRows: true });
    expect(names.length - 2 * base).toBe(3);
    const before = names.length;
    taskSourceSuite(count, memoryFactory(), { bucketLeases: true });
    expect(names.length - before - base).toBeGreaterThanOrEqual(14);
  });

  it('a complete that ignores the fence', async () => {
    const failed = await failingCases(memoryFactory(CompleteIgnoresFence), [fencedWriteTests, raceTests]);
    expect(failed).toContain(
      'complete: a stale fence is rejected and changes nothing (the paused worker after a takeover)',
    );
    expect(failed).toContain(
      'race: a worker paused past its lease cannot write over its successor, in any order',
    );
  }, 60_000);

  it('a fail that ignores the fence', async () => {
    const failed = await failingCases(memoryFactory(FailIgnoresFence), [fencedWriteTests]);
    expect(failed).toContain('fail: a stale fence is rejected and changes nothing');
  }, 60_000);

  it('a claim that ignores the fence order', async () => {
    const failed = await failingCases(memoryFactory(ClaimIgnoresFence), [claimTests]);
    expect(failed).toContain('claim: an equal or lower fence is stale and changes nothing');
    expect(failed).toContain('claim: a running task is taken over only with a higher fence');
  }, 60_000);

  it('failures that are always retried', async () => {
    const failed = await failingCases(memoryFactory(AlwaysRetry), [retryTests, claimTests]);
    expect(failed).toContain('retry: a non-retryable failure makes the task dead at once');
    expect(failed).toContain('claim: done and dead tasks are not runnable, whatever the fence');
  }, 60_000);

  it('retries without a backoff', async () => {
    const failed = await failingCases(memoryFactory(MemoryTaskSource, { retryDelayMs: () => 0 }), [
      retryTests,
    ]);
    expect(failed).toContain(
      'retry: a retryable failure waits for its backoff, then the task is due and claimable again',
    );
    expect(failed).toContain(
      'retry: each backoff lies between half the base delay and the cap, on the source clock',
    );
  }, 60_000);

  it('a backoff that ignores its cap', async () => {
    const failed = await failingCases(
      memoryFactory(MemoryTaskSource, {
        retryDelayMs: (attempts) => 1_000 * 60 * 2 ** (attempts - 1) * 1_000,
      }),
      [retryTests],
    );
    expect(failed).toContain(
      'retry: each backoff lies between half the base delay and the cap, on the source clock',
    );
  }, 60_000);

  it("a relative delay computed on the caller's clock", async () => {
    const failed = await failingCases(memoryFactory(DelayOnCallerClock), [enqueueTests]);
    expect(failed).toContain(
      "enqueue: delayMs counts from the source's clock when the task is stored, never the caller's",
    );
  }, 60_000);

  it('enqueueWithResults that reports known keys as added', async () => {
    const failed = await failingCases(memoryFactory(AlwaysAdded), [enqueueTests]);
    expect(failed).toContain(
      'enqueue: enqueueWithResults (optional) says which tasks were added and which keys were known',
    );
  }, 60_000);

  it('heartbeats that keep no previous beat, or are stamped with the caller’s clock', async () => {
    const name =
      'heartbeat (optional): one record per worker, on the source clock, keeping the previous beat of the run';
    expect(await failingCases(memoryFactory(NoPreviousBeat), [heartbeatTests])).toEqual([name]);
    expect(await failingCases(memoryFactory(CallerClockBeats), [heartbeatTests])).toEqual([name]);
  }, 60_000);

  it('a pass that lists tasks twice', async () => {
    const failed = await failingCases(memoryFactory(DueTwice), [dueTests]);
    expect(failed).toContain(
      'due: every due task exactly once per pass, from any start, with pages smaller than the set',
    );
  }, 60_000);

  it('a pass that does not wrap around', async () => {
    const failed = await failingCases(memoryFactory(DueNoWrap), [dueTests]);
    expect(failed).toContain(
      'due: every due task exactly once per pass, from any start, with pages smaller than the set',
    );
    expect(failed).toContain(
      'due: passes from different starts are rotations of one stable order and begin at different tasks',
    );
  }, 60_000);

  it('a pass that ignores start', async () => {
    const failed = await failingCases(memoryFactory(DueIgnoresStart), [dueTests]);
    expect(failed).toContain(
      'due: passes from different starts are rotations of one stable order and begin at different tasks',
    );
  }, 60_000);

  it('a pass that lists finished tasks', async () => {
    const failed = await failingCases(memoryFactory(DueListsDone), [dueTests, enqueueTests]);
    expect(failed).toContain(
      'due: not yet due, done, dead and freshly claimed tasks are left out; abandoned claims come back',
    );
    expect(failed).toContain(
      'due: a task finished by another worker before the pass reaches it is not listed',
    );
  }, 60_000);

  it('due keys that are shared, fall along the pass, or depend on the start', async () => {
    const name =
      'due: each task carries a unique dueKey that rises along the pass and wraps around at most once';
    for (const Source of [DueKeyShared, DueKeyReversed, DueKeyPerPass]) {
      expect(await failingCases(memoryFactory(Source), [dueTests]), Source.name).toContain(name);
    }
  }, 60_000);

  it('a batch settle that ignores the claim token', async () => {
    const failed = await failingCases(memoryFactory(SettleIgnoresToken), [bucketTests]);
    expect(failed).toContain(
      'buckets: settle writes many outcomes in one call, each only with its exact token',
    );
    expect(failed).toContain('buckets: a task retried inside one lease is claimed again with a higher token');
  }, 60_000);

  it('a bucket claim that lets an older lease in', async () => {
    const failed = await failingCases(memoryFactory(ClaimBucketIgnoresLeaseFence), [bucketTests]);
    expect(failed).toContain(
      'buckets: a newer lease takes running tasks over at once; the older lease can write nothing',
    );
  }, 60_000);

  it('a multi-bucket settle that ignores each batch’s own lease', async () => {
    const failed = await failingCases(memoryFactory(SettleBucketsIgnoresLease), [bucketTests]);
    expect(failed).toContain(
      "buckets: settleBuckets (where implemented) writes several buckets' outcomes; a stale lease refuses only its own batch",
    );
  }, 60_000);

  it('claim tokens that do not identify attempts (the lease fence reused)', async () => {
    const failed = await failingCases(memoryFactory(TokenIsLeaseFence), [bucketTests]);
    expect(failed).toContain('buckets: a task retried inside one lease is claimed again with a higher token');
  }, 60_000);

  it('a bucket claim that ignores the layout', async () => {
    const failed = await failingCases(memoryFactory(ClaimBucketIgnoresLayout), [bucketTests]);
    expect(failed).toContain(
      'buckets: every write checks the layout: workers of another layout write nothing',
    );
  }, 60_000);

  it('a bucket claim that ignores skipKinds', async () => {
    const failed = await failingCases(memoryFactory(ClaimBucketIgnoresSkipKinds), [bucketTests]);
    expect(failed).toEqual([
      'buckets: claimBucket leaves the kinds it is asked to skip alone: not claimed, no attempt counted',
    ]);
  }, 60_000);

  it('a multi-bucket claim that lets one old lease in', async () => {
    const failed = await failingCases(memoryFactory(ClaimBucketsIgnoresOneFence), [claimBucketsTests]);
    expect(failed).toContain(
      'buckets: claimBuckets (where implemented) refuses a stale lease for its own bucket only; a newer lease in the call takes its bucket over',
    );
  }, 60_000);

  it('a multi-bucket claim that puts tasks under another bucket’s lease', async () => {
    const failed = await failingCases(memoryFactory(ClaimBucketsUnderFirstLease), [claimBucketsTests]);
    expect(failed).toContain(
      'buckets: claimBuckets (where implemented) takes due tasks across buckets in one call, each under its own lease, the limit shared in input order',
    );
  }, 60_000);

  it('multi-bucket claims that do not share the limit, or stop at the first bucket’s end', async () => {
    for (const Source of [ClaimBucketsLimitEach, ClaimBucketsStopsAtFirstBucket]) {
      expect(await failingCases(memoryFactory(Source), [claimBucketsTests]), Source.name).toContain(
        'buckets: claimBuckets (where implemented) takes due tasks across buckets in one call, each under its own lease, the limit shared in input order',
      );
    }
  }, 60_000);

  it('a multi-bucket claim that one stale lease refuses entirely', async () => {
    const failed = await failingCases(memoryFactory(ClaimBucketsStaleRefusesAll), [claimBucketsTests]);
    expect(failed).toContain(
      'buckets: claimBuckets (where implemented) refuses a stale lease for its own bucket only; a newer lease in the call takes its bucket over',
    );
  }, 60_000);

  it('a multi-bucket claim that ignores the layout', async () => {
    const failed = await failingCases(memoryFactory(ClaimBucketsIgnoresLayout), [claimBucketsTests]);
    expect(failed).toContain(
      'buckets: claimBuckets (where implemented) checks the layout and its arguments: leases of another layout claim nothing',
    );
  }, 60_000);

  it('a multi-bucket claim that ignores skipKinds', async () => {
    const failed = await failingCases(memoryFactory(ClaimBucketsIgnoresSkipKinds), [claimBucketsTests]);
    expect(failed).toEqual([
      'buckets: claimBuckets (where implemented) leaves the kinds it is asked to skip alone, in every bucket',
    ]);
  }, 60_000);

  it('multi-bucket claim tokens that do not identify attempts (the lease fence reused)', async () => {
    const failed = await failingCases(memoryFactory(ClaimBucketsTokenIsLeaseFence), [claimBucketsTests]);
    expect(failed).toContain(
      'buckets: claimBuckets (where implemented) claims a retried task again under the same lease with a higher token; buries abandoned final attempts',
    );
  }, 60_000);

  it('the unmodified reference source passes the same groups', async () => {
    const failed = await failingCases(memoryFactory(), [
      enqueueTests,
      claimTests,
      fencedWriteTests,
      retryTests,
      dueTests,
      raceTests,
      bucketTests,
      claimBucketsTests,
      heartbeatTests,
    ]);
    expect(failed).toEqual([]);
  }, 60_000);
});
