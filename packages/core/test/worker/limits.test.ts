import { describe, expect, it } from 'vitest';
import { MemoryTaskSource, semaphore, Worker } from '../../src/index.js';
import { gate, memoryLocks, record, sleepMs, until } from './helpers.js';

describe('Worker: per-kind limits (task mode)', () => {
  it('limit 2 across 4 workers × concurrency 4: never more than 2 handlers of the kind, every task once', async () => {
    await limitedFleet({ concurrency: 4, schedule: { every: 20 } }, 40);
  });

  it('skips a task of a kind at its limit without claiming it, and runs it once a permit is free', async () => {
    const { provider } = memoryLocks();
    const source = new MemoryTaskSource();
    await source.enqueue(Array.from({ length: 4 }, () => ({ kind: 'partner-api' })));
    const release = gate();
    let running = 0;
    const worker = new Worker({
      locks: provider(),
      source,
      concurrency: 4,
      schedule: { every: 10 },
      limits: { 'partner-api': 2 },
      handler: async () => {
        running++;
        try {
          await release.promise;
        } finally {
          running--;
        }
      },
    });
    const skipped = record(worker, 'limit-skipped');
    const passes = record(worker, 'pass-finished');
    const run = worker.run();
    await until(() => running === 2 && passes.length >= 1, 10_000, 'two handlers running');
    const seen = passes.length;
    await until(() => passes.length >= seen + 3, 10_000, 'three more passes');
    expect(running).toBe(2);
    expect(skipped.length).toBeGreaterThanOrEqual(2);
    expect(passes.at(-1)).toMatchObject({ claimed: 0, limitSkipped: 2 });
    expect(source.counts()).toMatchObject({ running: 2, pending: 2 });
    expect(
      source
        .tasks()
        .filter((t) => t.status === 'pending')
        .every((t) => t.attempts === 0),
    ).toBe(true);
    release.open();
    await until(() => source.counts().done === 4, 10_000, 'every task done');
    await worker.stop();
    await run;
  });

  it('a permit of the kind held elsewhere counts against the limit', async () => {
    const { provider } = memoryLocks();
    const locks = provider();
    const source = new MemoryTaskSource();
    await source.enqueue({ kind: 'partner-api' });
    const outsider = await locks.openSession();
    const permit = await semaphore(locks, 'limit/partner-api', { limit: 1 }).tryAcquire(outsider);
    expect(permit).not.toBeNull();
    const worker = new Worker({
      locks,
      source,
      schedule: { every: 10 },
      limits: { 'partner-api': 1 },
      handler: () => undefined,
    });
    const skipped = record(worker, 'limit-skipped');
    const run = worker.run();
    await until(() => skipped.length >= 2, 10_000, 'the task skipped twice');
    expect(source.counts()).toMatchObject({ pending: 1, done: 0 });
    await permit!.release();
    await until(() => source.counts().done === 1, 10_000, 'the task done');
    await worker.stop();
    await run;
    await outsider.destroy();
  });

  it("a lost permit aborts the handler's signal, as a lost lease does", async () => {
    const { provider } = memoryLocks();
    const locks = provider();
    const source = new MemoryTaskSource();
    await source.enqueue({ kind: 'partner-api' });
    const started = gate<AbortSignal>();
    const worker = new Worker({
      locks,
      source,
      schedule: { every: 10 },
      limits: { 'partner-api': 1 },
      handler: async ({ signal }) => {
        started.open(signal);
        await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
        throw signal.reason;
      },
    });
    const lost = record(worker, 'lease-lost');
    const run = worker.run();
    const signal = await started.promise;
    expect(signal.aborted).toBe(false);
    expect(await locks.forceRelease('limit/partner-api/slot/0')).toBe(true);
    await until(() => signal.aborted, 10_000, 'the handler signal aborted');
    expect(signal.reason).toMatchObject({ code: 'LEASE_LOST' });
    await until(() => lost.length === 1, 10_000, 'a lease-lost event');
    await worker.stop();
    await run;
  });

  it('refuses bad limits, naming the option; empty limits are fine in both modes', () => {
    const { provider } = memoryLocks();
    const base = { locks: provider(), source: new MemoryTaskSource(), handler: () => undefined };
    expect(() => new Worker({ ...base, leaseBy: 'bucket', limits: {} })).not.toThrow();
    expect(() => new Worker({ ...base, leaseBy: 'bucket', limits: { mail: 2 } })).not.toThrow();
    expect(() => new Worker({ ...base, limits: { mail: 0 } })).toThrow(/limits\.mail must be a whole number/);
    expect(() => new Worker({ ...base, leaseBy: 'bucket', limits: { mail: 0 } })).toThrow(
      /limits\.mail must be a whole number/,
    );
    expect(() => new Worker({ ...base, limits: { mail: 1.5 } })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });
});

describe('Worker: per-kind limits (bucket mode)', () => {
  const bucketWorker = (
    locks: ReturnType<ReturnType<typeof memoryLocks>['provider']>,
    source: MemoryTaskSource,
    id: string,
    handler: ConstructorParameters<typeof Worker>[0]['handler'],
    limit = 2,
  ) =>
    new Worker({
      id,
      locks,
      source,
      leaseBy: 'bucket',
      buckets: { count: 8, balanceIntervalMs: 100, prefetch: 8 },
      concurrency: 4,
      schedule: { every: 20 },
      limits: { 'partner-api': limit },
      handler,
    });

  it('limit 2 across 4 workers × concurrency 4: never more than 2 handlers of the kind, every task once, no attempt counted for a skip', async () => {
    const skipped = await limitedFleet(
      {
        leaseBy: 'bucket',
        buckets: { count: 8, balanceIntervalMs: 100, prefetch: 8 },
        concurrency: 4,
        schedule: { every: 20 },
      },
      60,
    );
    expect(skipped).toBeGreaterThan(0);
  });

  it('while the kind is full, claims leave its tasks alone; they run once a permit is free', {
    timeout: 30_000,
  }, async () => {
    const { provider } = memoryLocks();
    const locks = provider();
    const source = new MemoryTaskSource();
    await source.enqueue(Array.from({ length: 3 }, () => ({ kind: 'partner-api' })));
    const outsider = await locks.openSession();
    const permit = await semaphore(locks, 'limit/partner-api', { limit: 1 }).tryAcquire(outsider);
    expect(permit).not.toBeNull();
    // One schedule tick at the start, the next a minute later: claims come from enqueue wake-ups.
    const worker = new Worker({
      id: 'w0',
      locks,
      source,
      leaseBy: 'bucket',
      buckets: { count: 1, balanceIntervalMs: 100, prefetch: 8 },
      concurrency: 4,
      schedule: { every: 60_000 },
      limits: { 'partner-api': 1 },
      handler: () => undefined,
    });
    const skipped = record(worker, 'limit-skipped');
    const run = worker.run();
    await until(() => skipped.length === 3, 10_000, 'the limited tasks skipped');
    for (let round = 1; round <= 5; round++) {
      await source.enqueue(Array.from({ length: 4 }, () => ({ kind: 'other' })));
      await until(() => source.counts().done === 4 * round, 10_000, `round ${round} of the other kind done`);
    }
    // Five claims for the other kind, none of which took the full kind's tasks again.
    expect(skipped.length).toBe(3);
    expect(source.counts()).toMatchObject({ pending: 3, running: 0 });
    expect(source.tasks().filter((t) => t.kind === 'partner-api' && t.attempts !== 0)).toEqual([]);
    // A permit freed elsewhere is seen at the next schedule tick (a minute away here): a worker that starts
    // now looks at once.
    await permit!.release();
    await worker.stop();
    await run;
    const next = new Worker({
      id: 'w1',
      locks,
      source,
      leaseBy: 'bucket',
      buckets: { count: 1, balanceIntervalMs: 100 },
      schedule: { every: 60_000 },
      limits: { 'partner-api': 1 },
      handler: () => undefined,
    });
    const nextRun = next.run();
    await until(() => source.counts().done === 23, 10_000, 'the limited tasks done');
    expect(source.tasks().filter((t) => t.attempts !== 1)).toEqual([]);
    await next.stop();
    await nextRun;
    await outsider.destroy();
  });

  it("a lost permit aborts the handler's signal, as a lost bucket lease does", async () => {
    const { provider } = memoryLocks();
    const locks = provider();
    const source = new MemoryTaskSource();
    await source.enqueue({ kind: 'partner-api' });
    const started = gate<AbortSignal>();
    const worker = bucketWorker(
      locks,
      source,
      'w0',
      async ({ signal }) => {
        started.open(signal);
        await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
        throw signal.reason;
      },
      1,
    );
    const lost = record(worker, 'lease-lost');
    const run = worker.run();
    const signal = await started.promise;
    expect(signal.aborted).toBe(false);
    expect(await locks.forceRelease('limit/partner-api/slot/0')).toBe(true);
    await until(() => signal.aborted, 10_000, 'the handler signal aborted');
    expect(signal.reason).toMatchObject({ code: 'LEASE_LOST' });
    await until(() => lost.length === 1, 10_000, 'a lease-lost event');
    await worker.stop();
    await run;
  });
});

/**
 * 4 workers share `n` tasks of a kind limited to 2 and `n` of another kind: never more than 2 handlers of the
 * limited kind at once, every task run once in its first counted attempt (a skip counts none), skips only of
 * the limited kind, no lock left. Returns the number of skips.
 */
async function limitedFleet(
  options: Omit<ConstructorParameters<typeof Worker>[0], 'locks' | 'source' | 'handler'>,
  n: number,
): Promise<number> {
  const { store, provider } = memoryLocks();
  const source = new MemoryTaskSource();
  await source.enqueue([
    ...Array.from({ length: n }, (_, i) => ({ kind: 'partner-api', payload: { n: i } })),
    ...Array.from({ length: n }, (_, i) => ({ kind: 'other', payload: { n: i } })),
  ]);
  const executions = new Map<string, number>();
  const permits: Array<{ kind: string; permit: unknown }> = [];
  let running = 0;
  let maxRunning = 0;
  const workers = Array.from(
    { length: 4 },
    (_, i) =>
      new Worker({
        ...options,
        id: `w${i}`,
        locks: provider(),
        source,
        limits: { 'partner-api': 2 },
        handler: async ({ task, permit }) => {
          executions.set(task.id, (executions.get(task.id) ?? 0) + 1);
          permits.push({ kind: task.kind, permit });
          if (task.kind !== 'partner-api') return;
          running++;
          maxRunning = Math.max(maxRunning, running);
          try {
            await sleepMs(2 + Math.random() * 5);
          } finally {
            running--;
          }
        },
      }),
  );
  const skippedPerWorker = workers.map((w) => record(w, 'limit-skipped'));
  const runs = workers.map((w) => w.run());
  await until(() => source.counts().done === 2 * n, 30_000, 'every task done');
  await Promise.all(workers.map((w) => w.stop()));
  await Promise.all(runs);

  expect(maxRunning).toBeLessThanOrEqual(2);
  // The handler sees the permit it runs under (slot key and fence), and only for the limited kind.
  for (const { kind, permit } of permits) {
    if (kind === 'other') expect(permit).toBeUndefined();
    else
      expect(permit).toEqual({
        key: expect.stringMatching(/^limit\/partner-api\/slot\/[01]$/),
        fence: expect.any(Number),
      });
  }
  expect(executions.size).toBe(2 * n);
  expect([...executions.entries()].filter(([, count]) => count !== 1)).toEqual([]);
  expect(source.tasks().filter((t) => t.attempts !== 1)).toEqual([]);
  const skipped = skippedPerWorker.flat();
  expect(skipped.every((e) => e.kind === 'partner-api')).toBe(true);
  expect(workers.reduce((count, w) => count + w.stats().limitSkipped, 0)).toBe(skipped.length);
  expect(store.list()).toEqual([]);
  return skipped.length;
}
