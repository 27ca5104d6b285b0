import { describe, expect, it } from 'vitest';
import { MemoryLockProvider, MemoryTaskSource, type Task } from '../../src/index.js';
import { SettleBatcher, type SettleOutcome } from '../../src/worker/bucket-mode/settle-batcher.js';
import type { WorkerEnv } from '../../src/worker/env.js';
import { InFlightTasks } from '../../src/worker/in-flight.js';
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
    const batcher = new SettleBatcher(workerEnv(source), source, lease, 16);

    // The second settlement arrives from the first one's continuation: after the flush wrote its last batch,
    // in the same turn of microtasks in which that flush finishes.
    let second: Promise<SettleOutcome> | undefined;
    await batcher.settle(complete(a)).then(() => {
      second = batcher.settle(complete(b));
    });
    await batcher.idle();
    expect((await source.get(b.id))?.status).toBe('done');
    await expect(second).resolves.toMatchObject({ applied: true, status: 'done' });
  });
});
