import { describe, expect, it } from 'vitest';
import {
  type BucketLeaseRef,
  type BucketSettlements,
  MemoryLockProvider,
  MemoryTaskSource,
  type Settlement,
  type SettleResult,
  type Task,
} from '../../src/index.js';
import { SettleBatcher, type SettleOutcome } from '../../src/worker/bucket-mode/settle-batcher.js';
import type { WorkerEnv } from '../../src/worker/env.js';
import { InFlightTasks } from '../../src/worker/in-flight.js';
import { KindLimits } from '../../src/worker/limits.js';
import { resolveWorkerOptions } from '../../src/worker/options.js';
import { Slots } from '../../src/worker/slots.js';

function workerEnv(source: MemoryTaskSource): WorkerEnv {
  const options = resolveWorkerOptions({
    locks: new MemoryLockProvider(),
    source,
    handler: () => undefined,
    leaseBy: 'bucket',
  });
  return {
    options,
    instance: 'test',
    handlerSlots: new Slots(options.concurrency),
    inFlight: new InFlightTasks(),
    limits: new KindLimits(new Map()),
    stopSignal: new AbortController().signal,
    hardStopSignal: new AbortController().signal,
    guard: undefined,
    observe: () => undefined,
    layoutChanged: () => undefined,
  };
}

describe('SettleBatcher', () => {
  it('a settlement queued as the last batch resolves is written, not stranded behind the flush that ended', async () => {
    const source = new MemoryTaskSource();
    await source.enqueue([{ kind: 'a' }, { kind: 'b' }]);
    const layout = await source.declareLeaseLayout({ mode: 'bucket', buckets: 1, locks: 'memory' });
    const lease = { epoch: layout.epoch, buckets: 1, bucket: 0, fence: 1 };
    const claimed = await source.claimBucket(lease, 'w', 10);
    if (!claimed.ok) throw new Error('claim refused');
    const [a, b] = claimed.tasks as [Task, Task];
    const complete = (task: Task) => ({
      taskId: task.id,
      fence: task.fence!,
      kind: 'complete' as const,
      result: null,
    });
    const batcher = new SettleBatcher(workerEnv(source), source, 16);

    // The second settlement arrives from the first one's continuation: after the flush wrote its last batch,
    // in the same turn of microtasks in which that flush finishes.
    let second: Promise<SettleOutcome> | undefined;
    await batcher.settle(lease, complete(a)).then(() => {
      second = batcher.settle(lease, complete(b));
    });
    await batcher.idle(lease);
    expect((await source.get(b.id))?.status).toBe('done');
    await expect(second).resolves.toMatchObject({ applied: true, status: 'done' });
  });

  it("writes the settlements of several buckets in one settleBuckets call; a stale lease refuses only its bucket's", async () => {
    const source = new CountingSource();
    await source.enqueue(Array.from({ length: 64 }, (_, i) => ({ kind: `k${i}` })));
    const layout = await source.declareLeaseLayout({ mode: 'bucket', buckets: 4, locks: 'memory' });
    const leases = [0, 1, 2].map((bucket) => ({ epoch: layout.epoch, buckets: 4, bucket, fence: 5 }));
    const claimed = await Promise.all(leases.map((lease) => claimAll(source, lease)));
    // A newer lease of bucket 2 claims: the old lease's outcomes there must not be written.
    const newer = { ...leases[2]!, fence: 6 };
    await claimAll(source, newer);
    const batcher = new SettleBatcher(workerEnv(source), source, 1_000);
    const outcomes = await Promise.all(
      leases.flatMap((lease, i) => claimed[i]!.map((task) => batcher.settle(lease, complete(task)))),
    );
    // Group commit: the first settlement is written at once, the rest (three buckets) together.
    expect(source.calls).toEqual([1, claimed.flat().length - 1]);
    const byBucket = leases.map((_, i) => outcomes.splice(0, claimed[i]!.length));
    for (const outcome of [...byBucket[0]!, ...byBucket[1]!])
      expect(outcome).toMatchObject({ applied: true, status: 'done' });
    for (const outcome of byBucket[2]!) expect(outcome).toEqual({ applied: false, reason: 'stale' });
    for (const task of claimed[2]!) expect((await source.get(task.id))?.status).toBe('running');
  });

  it('a settlement under a newer lease of a bucket already in the write goes in the next write', async () => {
    const source = new CountingSource();
    await source.enqueue(Array.from({ length: 8 }, () => ({ kind: 'a' })));
    const layout = await source.declareLeaseLayout({ mode: 'bucket', buckets: 1, locks: 'memory' });
    const old = { epoch: layout.epoch, buckets: 1, bucket: 0, fence: 1 };
    const [first] = await claimAll(source, old, 1);
    const newer = { ...old, fence: 2 };
    const [second] = await claimAll(source, newer, 1);
    const batcher = new SettleBatcher(workerEnv(source), source, 16);
    const [a, b] = await Promise.all([
      batcher.settle(old, complete(first!)),
      batcher.settle(newer, complete(second!)),
    ]);
    expect(a).toEqual({ applied: false, reason: 'stale' });
    expect(b).toMatchObject({ applied: true, status: 'done' });
    expect(source.calls).toEqual([1, 1]);
    await batcher.idle(old);
    await batcher.idle(newer);
  });

  it('two attempts of one task go in successive writes, not one write that settles the task twice', async () => {
    const source = new CountingSource();
    const [id] = await source.enqueue({ kind: 'a' });
    const layout = await source.declareLeaseLayout({ mode: 'bucket', buckets: 1, locks: 'memory' });
    const lease = { epoch: layout.epoch, buckets: 1, bucket: 0, fence: 1 };
    const [first] = await claimAll(source, lease);
    const [otherId] = await source.enqueue({ kind: 'b' });
    const [other] = await claimAll(source, lease);
    expect(other!.id).toBe(otherId);
    // The same lease claims the task again: a second attempt while the first one's outcome is still to be
    // written (in a worker: its own claim reclaimed after a pause longer than the reclaim threshold).
    await source.settle(lease, [{ taskId: id!, fence: first!.fence!, kind: 'release' }]);
    const [second] = await claimAll(source, lease);
    expect(second!.id).toBe(id);
    const errors: unknown[] = [];
    const env = {
      ...workerEnv(source),
      observe: (e: { type: string; error?: unknown }) => {
        if (e.type === 'error') errors.push(e.error);
      },
    } as WorkerEnv;
    const batcher = new SettleBatcher(env, source, 16);
    // The first write carries the other task alone (group commit); the three queued behind it would carry the
    // task twice.
    const outcomes = await Promise.all([
      batcher.settle(lease, complete(other!)),
      batcher.settle(lease, complete(first!)),
      batcher.settle(lease, complete(second!)),
    ]);
    expect(errors).toEqual([]);
    expect(outcomes[0]).toMatchObject({ applied: true, status: 'done' });
    expect(outcomes[1]).toEqual({ applied: false, reason: 'stale' });
    expect(outcomes[2]).toMatchObject({ applied: true, status: 'done' });
    expect(source.calls).toEqual([1, 1, 1]);
  });

  it('a source without settleBuckets gets one settle per bucket of the write', async () => {
    const source = new PerBucketSource();
    await source.enqueue(Array.from({ length: 32 }, (_, i) => ({ kind: `k${i}` })));
    const layout = await source.declareLeaseLayout({ mode: 'bucket', buckets: 2, locks: 'memory' });
    const leases = [0, 1].map((bucket) => ({ epoch: layout.epoch, buckets: 2, bucket, fence: 3 }));
    const claimed = await Promise.all(leases.map((lease) => claimAll(source, lease)));
    const batcher = new SettleBatcher(workerEnv(source), source, 1_000);
    const outcomes = await Promise.all(
      leases.flatMap((lease, i) => claimed[i]!.map((task) => batcher.settle(lease, complete(task)))),
    );
    for (const outcome of outcomes) expect(outcome).toMatchObject({ applied: true, status: 'done' });
    // The first settlement alone, then the rest: both buckets, a settle each.
    expect(source.settles).toBe(3);
  });
});

function complete(task: Task): Settlement {
  return { taskId: task.id, fence: task.fence!, kind: 'complete', result: null };
}

async function claimAll(source: MemoryTaskSource, lease: BucketLeaseRef, limit = 1_000): Promise<Task[]> {
  const claimed = await source.claimBucket(lease, 'w', limit);
  if (!claimed.ok) throw new Error(`claim refused: ${claimed.reason}`);
  return [...claimed.tasks];
}

/** Counts the settlements of each settleBuckets call. */
class CountingSource extends MemoryTaskSource {
  readonly calls: number[] = [];
  override settleBuckets(batches: readonly BucketSettlements[]): Promise<SettleResult[]> {
    this.calls.push(batches.reduce((n, b) => n + b.settlements.length, 0));
    return super.settleBuckets(batches);
  }
}

/** A bucket source with only the required operations. */
class PerBucketSource extends MemoryTaskSource {
  settles = 0;
  constructor() {
    super();
    Object.defineProperty(this, 'settleBuckets', { value: undefined });
  }
  override settle(lease: BucketLeaseRef, items: readonly Settlement[]): Promise<SettleResult> {
    this.settles++;
    return super.settle(lease, items);
  }
}
