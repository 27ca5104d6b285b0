import { describe, expect, it } from 'vitest';
import {
  ManualClock,
  MemoryLockProvider,
  MemoryLockStore,
  MemoryTaskSource,
  type Schedule,
  Worker,
} from '../../src/index.js';
import { memoryLocks, record, until } from './helpers.js';

describe('Worker events', () => {
  it('emits typed payloads for a pass, a task, a held lock and the stop', async () => {
    const { store, provider } = memoryLocks();
    const source = new MemoryTaskSource();
    const [free, held] = await source.enqueue([
      { kind: 'greet', payload: { name: 'Ada' } },
      { kind: 'greet', payload: { name: 'Bob' } },
    ]);
    const holder = await provider().openSession();
    const heldLease = (await holder.tryAcquire(`task/${held}`))!;

    const worker = new Worker({
      id: 'events',
      locks: provider(),
      source,
      schedule: { once: true },
      start: () => 0,
      handler: ({ task }) => `hello ${(task.payload as { name: string }).name}`,
    });
    const log: string[] = [];
    for (const event of [
      'session-opened',
      'pass-started',
      'skipped-locked',
      'task-started',
      'task-completed',
      'pass-finished',
      'stopped',
    ] as const) {
      worker.on(event, () => log.push(event));
    }
    const passStarted = record(worker, 'pass-started');
    const passFinished = record(worker, 'pass-finished');
    const started = record(worker, 'task-started');
    const completed = record(worker, 'task-completed');
    const skipped = record(worker, 'skipped-locked');
    const stopped = record(worker, 'stopped');
    await worker.run();

    const at = (event: string) => log.indexOf(event);
    expect(log).toHaveLength(7);
    expect(at('session-opened')).toBe(0);
    expect(at('pass-started')).toBe(1);
    expect(at('task-started')).toBeLessThan(at('task-completed'));
    expect(at('pass-started')).toBeLessThan(at('skipped-locked'));
    expect(at('skipped-locked')).toBeLessThan(at('pass-finished'));
    expect(at('stopped')).toBe(6);
    expect(passStarted).toEqual([{ workerId: 'events', pass: 1, start: 0 }]);
    expect(skipped).toEqual([{ workerId: 'events', taskId: held, lockKey: `task/${held}` }]);
    expect(started[0]).toMatchObject({
      workerId: 'events',
      lockKey: `task/${free}`,
      task: { id: free, status: 'running', attempts: 1, workerId: 'events' },
    });
    expect(started[0]!.fence).toBe(started[0]!.task.fence);
    expect(completed[0]).toMatchObject({ workerId: 'events', fence: started[0]!.fence, result: 'hello Ada' });
    expect(completed[0]!.durationMs).toBeGreaterThanOrEqual(0);
    expect(passFinished[0]).toMatchObject({
      workerId: 'events',
      pass: 1,
      outcome: 'complete',
      seen: 2,
      lockAttempts: 2,
      claimed: 1,
      skippedLocked: 1,
      claimSkipped: 0,
    });
    expect(stopped[0]!.stats).toMatchObject({ passes: 1, lockAttempts: 2, acquired: 1, notAcquired: 1 });
    expect(await source.get(held!)).toMatchObject({ status: 'pending' });
    await heldLease.release();
    await holder.destroy();
    expect(store.list()).toEqual([]);
  });

  it('reports a throwing listener as an error event and carries on', async () => {
    const { provider } = memoryLocks();
    const source = new MemoryTaskSource();
    await source.enqueue({ kind: 'k' });
    const worker = new Worker({ locks: provider(), source, schedule: { once: true }, handler: () => 1 });
    worker.on('task-started', () => {
      throw new Error('listener bug');
    });
    const errors = record(worker, 'error');
    await worker.run();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ phase: 'listener', error: { message: 'listener bug' } });
    expect(source.counts().done).toBe(1);
  });

  it('retries opening the session and reports the failure', async () => {
    const { store, provider } = memoryLocks();
    const source = new MemoryTaskSource();
    await source.enqueue({ kind: 'k' });
    store.failNext(2);
    const worker = new Worker({
      locks: provider(),
      source,
      schedule: { once: true },
      retry: { baseMs: 5, maxMs: 20 },
      handler: () => 1,
    });
    const errors = record(worker, 'error');
    await worker.run();
    expect(errors.map((e) => [e.phase, (e.error as { code?: string }).code])).toEqual([
      ['session', 'UNAVAILABLE'],
      ['session', 'UNAVAILABLE'],
    ]);
    expect(source.counts().done).toBe(1);
  });

  it('uses the lockKey and kinds options', async () => {
    const { store, provider } = memoryLocks();
    const source = new MemoryTaskSource();
    const [a, b] = await source.enqueue([{ kind: 'a' }, { kind: 'b' }]);
    const worker = new Worker({
      locks: provider(),
      source,
      kinds: ['a'],
      lockKey: (task) => `jobs/${task.kind}/${task.id}`,
      schedule: { once: true },
      handler: () => 'ok',
    });
    await worker.run();
    expect(store.history().map((g) => g.key)).toEqual([`jobs/a/${a}`]);
    expect(await source.get(b!)).toMatchObject({ status: 'pending' });
  });
  it('reports and skips a task whose lock key cannot work, without stalling the pass', async () => {
    const { provider } = memoryLocks();
    const source = new MemoryTaskSource();
    const [bad, throwing, good] = await source.enqueue([
      { kind: 'empty-key' },
      { kind: 'throws' },
      { kind: 'ok' },
    ]);
    const worker = new Worker({
      locks: provider(),
      source,
      schedule: { once: true },
      lockKey: (task) => {
        if (task.kind === 'throws') throw new TypeError('no key for you');
        return task.kind === 'empty-key' ? '' : `task/${task.id}`;
      },
      handler: () => 'ok',
    });
    const errors = record(worker, 'error');
    await worker.run();
    expect(errors.map((e) => [e.phase, e.taskId]).sort()).toEqual([
      ['pass', bad],
      ['pass', throwing],
    ]);
    expect(await source.get(good!)).toMatchObject({ status: 'done' });
    expect(source.counts()).toMatchObject({ pending: 2, done: 1 });
    expect(worker.stats()).toMatchObject({ lockAttempts: 1, passes: 1 });
  });
});

describe('Worker schedules and options', () => {
  function manual(schedule: Schedule, wallStart = Date.UTC(2026, 0, 1, 0, 0, 1), wakeOnEnqueue = false) {
    const clock = new ManualClock({ wallStart });
    const locks = new MemoryLockProvider({ store: new MemoryLockStore({ clock }), ttlMs: 600_000 });
    const source = new MemoryTaskSource({ clock });
    const worker = new Worker({
      locks,
      source,
      schedule,
      start: 'worker-id',
      handler: () => 'ok',
      wakeOnEnqueue,
    });
    const passes = record(worker, 'pass-started');
    return { clock, source, worker, passes };
  }

  it('{ every } starts passes that far apart on the worker clock', async () => {
    const { clock, worker, passes, source } = manual({ every: 1_000 });
    const run = worker.run();
    await clock.advance(0);
    expect(passes).toHaveLength(1);
    await source.enqueue({ kind: 'k' });
    await clock.advance(999);
    expect(passes).toHaveLength(1);
    await clock.advance(1);
    expect(passes).toHaveLength(2);
    expect(source.counts().done).toBe(1);
    await clock.advance(3_000);
    expect(passes).toHaveLength(5);
    // 'worker-id' start: the same fraction every pass.
    expect(new Set(passes.map((p) => p.start)).size).toBe(1);
    await worker.stop();
    await run;
  });

  it('{ every } with wakeOnEnqueue starts a pass as soon as the source says a task became due', async () => {
    const { clock, worker, passes, source } = manual({ every: 60_000 }, undefined, true);
    const run = worker.run();
    await clock.advance(0);
    expect(passes).toHaveLength(1);
    await source.enqueue({ kind: 'k' });
    await clock.advance(0);
    await until(() => source.counts().done === 1, 5_000, 'the woken pass to run the task');
    expect(passes).toHaveLength(2);
    // A task not due yet wakes nobody: the next pass comes on the schedule.
    await source.enqueue({ kind: 'k', runAt: new Date(clock.wallNow() + 3_600_000) });
    await clock.advance(0);
    expect(passes).toHaveLength(2);
    await clock.advance(60_000);
    expect(passes).toHaveLength(3);
    await worker.stop();
    await run;
  });

  it('{ cron } starts a pass at each occurrence of the expression', async () => {
    const { clock, worker, passes } = manual({ cron: '*/5 * * * * *' });
    const run = worker.run();
    await clock.advance(3_999); // wall clock starts at 00:00:01
    expect(passes).toHaveLength(0);
    await clock.advance(1);
    expect(passes).toHaveLength(1);
    await clock.advance(4_999);
    expect(passes).toHaveLength(1);
    await clock.advance(1);
    expect(passes).toHaveLength(2);
    await worker.stop();
    await run;
  });

  it('rejects invalid options with INVALID_ARGUMENT naming the option', () => {
    const { provider } = memoryLocks();
    const base = { locks: provider(), source: new MemoryTaskSource(), handler: () => undefined };
    const invalid: Array<[Partial<ConstructorParameters<typeof Worker>[0]>, RegExp]> = [
      [{ concurrency: 0 }, /concurrency/],
      [{ concurrency: 1.5 }, /concurrency/],
      [{ schedule: { every: -1 } }, /schedule\.every/],
      [{ schedule: { cron: 'not a cron' } }, /schedule\.cron/],
      [{ schedule: {} as Schedule }, /schedule must be/],
      [{ handlerTimeoutMs: 0 }, /handlerTimeoutMs/],
      [{ stopGraceMs: -5 }, /stopGraceMs/],
      [{ handler: 'nope' as never }, /handler/],
      [{ id: '' }, /id/],
    ];
    for (const [options, message] of invalid) {
      expect(() => new Worker({ ...base, ...options })).toThrow(message);
      try {
        new Worker({ ...base, ...options });
      } catch (error) {
        expect((error as { code?: string }).code).toBe('INVALID_ARGUMENT');
      }
    }
  });
});
