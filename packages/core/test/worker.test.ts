import { describe, expect, it } from 'vitest';
import { MemoryTaskSource, type Task, type TaskSource, Worker } from '../src/index.js';
import { gate, memoryLocks, nextEvent, RecordingProvider, record, sleepMs, until } from './worker/helpers.js';

const sum = (workers: Worker[], key: 'lockAttempts' | 'claimed' | 'staleWrites' | 'completed') =>
  workers.reduce((total, w) => total + w.stats()[key], 0);

describe('Worker: exactly once', () => {
  it('runs each of 2,000 tasks exactly once across 4 workers with separate sessions', async () => {
    const { store, provider } = memoryLocks();
    const source = new MemoryTaskSource();
    await source.enqueue(Array.from({ length: 2_000 }, (_, i) => ({ kind: 'count', payload: { n: i } })));
    const executions = new Map<string, number>();
    const workers = Array.from(
      { length: 4 },
      (_, i) =>
        new Worker({
          id: `w${i}`,
          locks: provider(),
          source,
          concurrency: 4,
          schedule: { once: true },
          handler: async ({ task }) => {
            executions.set(task.id, (executions.get(task.id) ?? 0) + 1);
            if (Math.random() < 0.05) await sleepMs(1);
            return { n: (task.payload as { n: number }).n };
          },
        }),
    );
    await Promise.all(workers.map((w) => w.run()));

    expect(source.counts()).toEqual({ pending: 0, running: 0, done: 2_000, failed: 0, dead: 0 });
    expect(executions.size).toBe(2_000);
    expect([...executions.entries()].filter(([, n]) => n !== 1)).toEqual([]);
    expect(sum(workers, 'claimed')).toBe(2_000);
    expect(sum(workers, 'completed')).toBe(2_000);
    expect(sum(workers, 'staleWrites')).toBe(0);
    // Every worker took part, and every result is the one its own handler returned.
    expect(workers.every((w) => w.stats().completed > 0)).toBe(true);
    expect(
      source.tasks().every((t) => (t.result as { n: number }).n === (t.payload as { n: number }).n),
    ).toBe(true);
    expect(store.list()).toEqual([]);
  });

  it('keeps lock attempts per executed task low with 8 workers', async () => {
    const { provider } = memoryLocks();
    const source = new MemoryTaskSource();
    await source.enqueue(Array.from({ length: 2_000 }, () => ({ kind: 'k' })));
    const workers = Array.from(
      { length: 8 },
      (_, i) =>
        new Worker({
          id: `w${i}`,
          locks: provider(),
          source,
          concurrency: 4,
          schedule: { once: true },
          handler: () => sleepMs(1),
        }),
    );
    await Promise.all(workers.map((w) => w.run()));
    const perTask = sum(workers, 'lockAttempts') / sum(workers, 'claimed');
    console.info(`8 workers, 2,000 tasks: ${perTask.toFixed(3)} lock attempts per executed task`);
    expect(source.counts().done).toBe(2_000);
    expect(sum(workers, 'claimed')).toBe(2_000);
    expect(perTask).toBeLessThan(2);
  });
});

describe('Worker: fencing closes the gaps a lock leaves open', () => {
  it('rejects the claim of a worker that listed a task another worker then finished (the naive race)', async () => {
    const { store, provider } = memoryLocks();
    const source = new MemoryTaskSource();
    const [id] = await source.enqueue({ kind: 'once' });
    // Worker A lists the task, then stalls before locking it.
    const listed = gate();
    const resume = gate();
    const slowLister: TaskSource = {
      enqueue: (tasks) => source.enqueue(tasks),
      claim: (taskId, fence, workerId) => source.claim(taskId, fence, workerId),
      complete: (taskId, fence, result) => source.complete(taskId, fence, result),
      fail: (taskId, fence, failure) => source.fail(taskId, fence, failure),
      get: (taskId) => source.get(taskId),
      close: () => source.close(),
      async *due(options) {
        for await (const task of source.due(options)) {
          listed.open();
          await resume.promise;
          yield task;
        }
      },
    };
    const ran: string[] = [];
    const a = new Worker({ id: 'A', locks: provider(), source: slowLister, handler: () => ran.push('A') });
    const b = new Worker({ id: 'B', locks: provider(), source, handler: () => ran.push('B') });
    const aSkips = record(a, 'claim-skipped');

    const aPass = a.runOnce();
    await listed.promise;
    const bPass = await b.runOnce();
    expect(bPass.claimed).toBe(1);
    const afterB = (await source.get(id!))!;
    expect(afterB).toMatchObject({ status: 'done', workerId: 'B', attempts: 1 });
    expect(store.list()).toEqual([]); // B released: A's lock attempt will succeed

    resume.open();
    const aSummary = await aPass;
    expect(aSummary).toMatchObject({ lockAttempts: 1, claimed: 0, claimSkipped: 1 });
    expect(ran).toEqual(['B']);
    expect(aSkips).toHaveLength(1);
    expect(aSkips[0]).toMatchObject({ workerId: 'A', taskId: id, reason: 'not-runnable' });
    expect(aSkips[0]!.fence).toBeGreaterThan(afterB.fence!);
    expect(a.stats()).toMatchObject({ acquired: 1, claimed: 0, claimSkipped: 1, completed: 0 });
    expect(await source.get(id!)).toEqual(afterB);
    expect(store.list()).toEqual([]); // A released the lease it could not use
    await Promise.all([a.stop(), b.stop()]);
  });

  it('takes over the tasks of a crashed worker and rejects its late writes as stale', async () => {
    const { store, provider } = memoryLocks({ ttlMs: 300, lockDelayMs: 100 });
    const source = new MemoryTaskSource({ reclaimAfterMs: 500 });
    const ids = await source.enqueue(Array.from({ length: 6 }, (_, i) => ({ kind: 'job', payload: i })));

    // C takes three tasks, then its process "pauses": its session stops renewing and its handlers hang.
    const paused = gate();
    const locksC = provider();
    const c = new Worker({
      id: 'C',
      locks: locksC,
      source,
      concurrency: 3,
      abandonAfterMs: 60_000,
      handler: async ({ workerId }) => {
        await paused.promise;
        return { by: workerId };
      },
    });
    const cStarted = record(c, 'task-started');
    const cLost = record(c, 'lease-lost');
    const cStale = record(c, 'stale-write');
    const cRun = c.runOnce();
    await until(() => cStarted.length === 3, 5_000, 'C to start three tasks');
    const crashedSession = locksC.last;
    crashedSession.abandon();
    const cFences = new Map(cStarted.map((e) => [e.task.id, e.fence]));

    const others = ['A', 'B'].map(
      (id) =>
        new Worker({
          id,
          locks: provider(),
          source,
          concurrency: 2,
          schedule: { every: 25 },
          handler: ({ workerId }) => ({ by: workerId }),
        }),
    );
    const runs = others.map((w) => w.run());
    await until(() => source.counts().done === 6, 10_000, 'all six tasks to be done');
    expect(store.hasSession(crashedSession.id)).toBe(false);
    expect(cLost).toHaveLength(3);

    // C wakes up and writes its results with the fences it took before the crash.
    paused.open();
    await cRun;
    expect(cStale).toHaveLength(3);
    expect(cStale.every((e) => e.operation === 'complete' && cFences.get(e.taskId) === e.fence)).toBe(true);
    expect(c.stats()).toMatchObject({ staleWrites: 3, completed: 0, leaseLost: 3 });

    for (const id of ids) {
      const task = (await source.get(id))!;
      expect(task.status).toBe('done');
      expect(['A', 'B']).toContain((task.result as { by: string }).by);
      if (cFences.has(id)) {
        expect(task.attempts).toBe(2);
        expect(task.fence).toBeGreaterThan(cFences.get(id)!);
      } else {
        expect(task.attempts).toBe(1);
      }
    }
    await Promise.all([c.stop(), ...others.map((w) => w.stop())]);
    await Promise.all(runs);
    expect(store.list()).toEqual([]);
  });
});

describe('Worker: sessions', () => {
  it('replaces a lost session, aborts the handlers that ran under it, and carries on', async () => {
    const { store } = memoryLocks();
    const locks = new RecordingProvider({ store, ttlMs: 200, lockDelayMs: 0 });
    const source = new MemoryTaskSource({ retryDelayMs: () => 0 });
    const [id] = await source.enqueue({ kind: 'long' });
    const reasons: unknown[] = [];
    const worker = new Worker({
      id: 'W',
      locks,
      source,
      schedule: { every: 20 },
      handler: async ({ task, signal }) => {
        if (task.attempts > 1) return 'second attempt';
        await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
        reasons.push(signal.reason);
        throw signal.reason;
      },
    });
    const lost = record(worker, 'session-lost');
    const opened = record(worker, 'session-opened');
    const run = worker.run();
    await nextEvent(worker, 'task-started');
    const first = locks.last;
    store.destroySession(first.id); // the server forgets the session (e.g. an operator, or a partition)
    await until(() => source.counts().done === 1, 5_000, 'the retried task to finish');
    expect(lost).toHaveLength(1);
    expect(lost[0]).toMatchObject({ workerId: 'W', sessionId: first.id });
    expect((reasons[0] as { code?: string }).code).toBe('LEASE_LOST');
    expect(opened.map((e) => e.sessionId)).toEqual([first.id, locks.last.id]);
    expect(locks.sessions).toHaveLength(2);
    expect(await source.get(id!)).toMatchObject({ status: 'done', attempts: 2, result: 'second attempt' });
    expect(worker.stats()).toMatchObject({ sessionsLost: 1, sessionsOpened: 2, failed: 1, completed: 1 });
    await worker.stop();
    await run;
    expect(store.hasSession(locks.last.id)).toBe(false);
  });
});

export type { Task };
