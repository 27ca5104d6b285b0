import { afterEach, describe, expect, it } from 'vitest';
import {
  type LockProvider,
  MemoryLockProvider,
  MemoryLockStore,
  MemoryTaskSource,
  type Task,
  type TryAcquireOptions,
  Worker,
  type WorkerOptions,
} from '../../src/index.js';
import { CuttableStore, gate, nextEvent, RecordingProvider, record, until } from './helpers.js';

const workers: Worker[] = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop({ graceMs: 0 })));
});

/** A memory provider that counts the lock requests it serves (tryAcquire, release, list). */
class CountingProvider extends RecordingProvider {
  requests = 0;
  override async list(prefix?: string) {
    this.requests++;
    return super.list(prefix);
  }
  override async openSession(options?: Parameters<MemoryLockProvider['openSession']>[0]) {
    const session = await super.openSession(options);
    const tryAcquire = session.tryAcquire.bind(session);
    session.tryAcquire = async (key: string, opts?: TryAcquireOptions) => {
      this.requests++;
      const lease = await tryAcquire(key, opts);
      if (lease) {
        const release = lease.release.bind(lease);
        Object.defineProperty(lease, 'release', {
          value: () => {
            this.requests++;
            return release();
          },
        });
      }
      return lease;
    };
    return session;
  }
}

function bucketWorker(locks: LockProvider, source: MemoryTaskSource, options: Partial<WorkerOptions> = {}) {
  const worker = new Worker({
    locks,
    source,
    leaseBy: 'bucket',
    buckets: { count: 16, balanceIntervalMs: 100 },
    concurrency: 8,
    schedule: { every: 200 },
    handler: () => 'ok',
    ...options,
  });
  workers.push(worker);
  return worker;
}

/** Counts every completion applied per task (from the workers' events). */
function completions(all: Worker[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const w of all) {
    w.on('task-completed', ({ task }) => counts.set(task.id, (counts.get(task.id) ?? 0) + 1));
  }
  return counts;
}

describe('Worker, bucket mode', () => {
  it('one worker drains every task exactly once with a handful of lock requests, then stops (once)', async () => {
    const store = new MemoryLockStore();
    const locks = new CountingProvider({ store, ttlMs: 5_000, lockDelayMs: 0 });
    const source = new MemoryTaskSource();
    const ids = await source.enqueue(Array.from({ length: 2_000 }, (_, n) => ({ kind: 'n', payload: n })));
    const seen = new Map<string, number>();
    const worker = bucketWorker(locks, source, {
      schedule: { once: true },
      handler: ({ task }) => {
        seen.set(task.id, (seen.get(task.id) ?? 0) + 1);
        return task.payload;
      },
    });
    await worker.run();
    expect(source.counts()).toMatchObject({ done: 2_000, running: 0, pending: 0 });
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    expect(seen.size).toBe(ids.length);
    // 16 bucket leases taken and given back, a membership key, a few list() rounds: not per task.
    expect(locks.requests).toBeLessThan(60);
    const stats = worker.stats();
    expect(stats).toMatchObject({
      completed: 2_000,
      bucketsAcquired: 16,
      bucketsReleased: 16,
      bucketsHeld: 0,
    });
    expect(stats.claimBatches).toBeLessThan(2_000 / 4);
    expect(stats.settleBatches).toBeLessThan(2_000 / 2);
  });

  it('workers spread the buckets evenly, and a stopping worker hands its buckets over at once', async () => {
    const store = new MemoryLockStore();
    const provider = () => new MemoryLockProvider({ store, ttlMs: 60_000, lockDelayMs: 0 });
    const source = new MemoryTaskSource();
    const all = ['a', 'b', 'c', 'd'].map((id) => bucketWorker(provider(), source, { id }));
    const runs = all.map((w) => w.run());
    const held = () => all.map((w) => w.stats().bucketsHeld);
    await until(() => held().every((n) => n === 4), 10_000, `an even spread (held ${held()})`);
    // d stops: its 4 buckets are released (not left to expire: the TTL is a minute) and taken by the others.
    const released = record(all[3]!, 'bucket-released');
    await all[3]!.stop();
    await runs[3];
    expect(released.map((e) => e.reason)).toEqual(['stop', 'stop', 'stop', 'stop']);
    await until(
      () =>
        held()
          .slice(0, 3)
          .reduce((a, b) => a + b, 0) === 16,
      10_000,
      'the handover',
    );
    expect(Math.max(...held().slice(0, 3)) - Math.min(...held().slice(0, 3))).toBeLessThanOrEqual(1);
    // Work goes on: new tasks run exactly once.
    const counts = completions(all);
    const ids = await source.enqueue(Array.from({ length: 300 }, (_, n) => ({ kind: 'n', payload: n })));
    await until(() => source.counts().done === 300, 10_000, 'the tasks');
    expect(ids.every((id) => counts.get(id) === 1)).toBe(true);
    await Promise.all(all.map((w) => w.stop()));
    await Promise.all(runs);
  });

  it('a joining worker gets its share by hand-over, and no bucket moves that need not', async () => {
    const store = new MemoryLockStore();
    const provider = () => new MemoryLockProvider({ store, ttlMs: 60_000, lockDelayMs: 0 });
    const source = new MemoryTaskSource();
    const first = ['a', 'b'].map((id) => bucketWorker(provider(), source, { id }));
    const runs = first.map((w) => w.run());
    await until(() => first.every((w) => w.stats().bucketsHeld === 8), 10_000, 'two workers with 8 each');
    const moved = first.map((w) => record(w, 'bucket-released'));
    const joiner = bucketWorker(provider(), source, { id: 'c' });
    runs.push(joiner.run());
    const all = [...first, joiner];
    await until(
      () =>
        all
          .map((w) => w.stats().bucketsHeld)
          .sort()
          .join() === '5,5,6',
      10_000,
      `16 buckets as 6/5/5 (held ${all.map((w) => w.stats().bucketsHeld)})`,
    );
    expect(moved.flat().map((e) => e.reason)).toEqual(Array(5).fill('rebalance'));
    expect(joiner.stats().bucketsAcquired).toBe(5);
    await Promise.all(all.map((w) => w.stop()));
    await Promise.all(runs);
  });

  it('a paused worker loses its buckets; the tasks it ran are taken over and its late writes change nothing', async () => {
    const store = new MemoryLockStore();
    const pausedLocks = new RecordingProvider({ store, ttlMs: 300, lockDelayMs: 0 });
    const source = new MemoryTaskSource();
    const ids = await source.enqueue(Array.from({ length: 40 }, (_, n) => ({ kind: 'n', payload: n })));
    const hang = gate();
    const paused = bucketWorker(pausedLocks, source, {
      id: 'paused',
      abandonAfterMs: 60_000,
      handler: async () => {
        await hang.promise;
        return 'late';
      },
    });
    const pausedRun = paused.run();
    await until(() => paused.stats().inFlight === 8, 10_000, 'the paused worker to start 8 tasks');
    // The process freezes: no more renewals; its session expires in the store.
    pausedLocks.last.abandon();
    const rescuer = bucketWorker(new MemoryLockProvider({ store, ttlMs: 60_000, lockDelayMs: 0 }), source, {
      id: 'rescuer',
      handler: ({ task }) => `rescued ${task.id}`,
    });
    const stale = record(paused, 'stale-write');
    const rescuerRun = rescuer.run();
    await until(() => source.counts().done === 40, 15_000, 'the rescuer to finish every task');
    hang.open();
    await until(() => stale.length === 8, 10_000, "the paused worker's late writes to be refused");
    const tasks = await Promise.all(ids.map((id) => source.get(id)));
    expect(tasks.every((t) => (t as Task).result === `rescued ${(t as Task).id}`)).toBe(true);
    expect(stale.every((e) => e.operation === 'complete')).toBe(true);
    await Promise.all([paused.stop({ graceMs: 0 }), rescuer.stop()]);
    await Promise.all([pausedRun, rescuerRun]);
  });

  it('a lost session loses every bucket it held (bucket-lost each, bucketsHeld back to 0), then the worker rejoins', async () => {
    // As Consul does, the server keeps a session for 2 × TTL: it still holds the keys when the client gives up.
    const store = new MemoryLockStore({ ttlMultiplier: 2 });
    const locks = new MemoryLockProvider({ store, ttlMs: 400, lockDelayMs: 0 });
    const source = new MemoryTaskSource();
    const worker = bucketWorker(locks, source, { retry: { baseMs: 20, maxMs: 100 } });
    const lost = record(worker, 'bucket-lost');
    const held: number[] = [];
    worker.on('bucket-acquired', () => held.push(worker.stats().bucketsHeld));
    const run = worker.run();
    await until(() => worker.stats().bucketsHeld === 16, 5_000, 'all 16 buckets');
    // The lock server stops answering: renewals fail until the client's deadline and the session is lost,
    // while the server still holds its keys. (The worker destroys a lost session at once, so its leases end
    // by a release, not by a loss the backend reports.)
    store.failNext(1_000_000);
    const sessionLost = await nextEvent(worker, 'session-lost');
    store.clearFaults();
    expect(sessionLost.sessionId).toBeDefined();
    expect(lost.map((e) => e.bucket).sort((a, b) => a - b)).toEqual([...Array(16).keys()]);
    expect(worker.stats()).toMatchObject({ bucketsHeld: 0, bucketsLost: 16 });
    // The old session expires at the server; the worker rejoins on a new one and takes every bucket again.
    await until(() => worker.stats().bucketsHeld === 16, 10_000, 'the buckets again, on a new session');
    expect(Math.max(...held)).toBe(16);
    expect(worker.stats().sessionsOpened).toBe(2);
    await worker.stop();
    await run;
  });

  it('a bucket lost while being handed back counts once, as lost (the counters never drift)', async () => {
    const store = new MemoryLockStore({ ttlMultiplier: 2 });
    const link = new CuttableStore(store);
    const hold = gate();
    const releasing = gate();
    // Worker a's bucket releases wait at a gate: the rebalance hand-back is still in flight when a's session is lost.
    class GatedReleases extends MemoryLockProvider {
      override async openSession(options?: Parameters<MemoryLockProvider['openSession']>[0]) {
        const session = await super.openSession(options);
        const tryAcquire = session.tryAcquire.bind(session);
        session.tryAcquire = async (key: string, opts?: TryAcquireOptions) => {
          const lease = await tryAcquire(key, opts);
          if (lease && key.includes('/b/')) {
            const release = lease.release.bind(lease);
            Object.defineProperty(lease, 'release', {
              value: async () => {
                releasing.open();
                await hold.promise;
                return release();
              },
            });
          }
          return lease;
        };
        return session;
      }
    }
    const source = new MemoryTaskSource();
    const a = bucketWorker(new GatedReleases({ store: link.asStore, ttlMs: 400, lockDelayMs: 0 }), source, {
      id: 'a',
      retry: { baseMs: 20, maxMs: 100 },
    });
    const runA = a.run();
    await until(() => a.stats().bucketsHeld === 16, 5_000, 'a to hold every bucket');
    const b = bucketWorker(new MemoryLockProvider({ store, ttlMs: 60_000, lockDelayMs: 0 }), source, {
      id: 'b',
    });
    const runB = b.run();
    const heldByA: number[] = [];
    for (const event of ['bucket-acquired', 'bucket-released', 'bucket-lost'] as const) {
      a.on(event, () => heldByA.push(a.stats().bucketsHeld));
    }
    await releasing.promise;
    link.cut = true;
    await nextEvent(a, 'session-lost');
    hold.open();
    link.cut = false;
    await until(
      () => a.stats().bucketsHeld + b.stats().bucketsHeld === 16 && a.stats().bucketsHeld === 8,
      10_000,
      `an even spread again (a ${a.stats().bucketsHeld}, b ${b.stats().bucketsHeld})`,
    );
    expect(Math.min(...heldByA)).toBe(0);
    for (const w of [a, b]) {
      const s = w.stats();
      expect(s.bucketsAcquired - s.bucketsReleased - s.bucketsLost).toBe(s.bucketsHeld);
    }
    await Promise.all([a.stop(), b.stop()]);
    await Promise.all([runA, runB]);
  });

  it('after a lost session the worker waits for its own old membership key, without calling the id taken', async () => {
    // The server keeps a session 2 × TTL and then applies the lock-delay (as Consul does): after the client
    // gave its session up, the membership key stays with that session, then stays free but blocked, for a while.
    const store = new MemoryLockStore({ ttlMultiplier: 2 });
    const link = new CuttableStore(store);
    const source = new MemoryTaskSource();
    const worker = bucketWorker(
      new MemoryLockProvider({ store: link.asStore, ttlMs: 400, lockDelayMs: 400 }),
      source,
      {
        id: 'a',
        retry: { baseMs: 30_000, maxMs: 30_000 },
      },
    );
    const errors = record(worker, 'error');
    const opened = record(worker, 'session-opened');
    const run = worker.run();
    await until(() => worker.stats().bucketsHeld === 16, 5_000, 'all 16 buckets');
    // Nothing the first session sends arrives any more (renewals, releases, its destroy); a new one works.
    link.cutSessions.add(opened[0]!.sessionId);
    await until(() => worker.stats().sessionsLost === 1, 5_000, 'the session loss');
    // The old session is gone at most 2 × TTL after its last renewal, the key free 400 ms later; the worker
    // tries again every balancing interval (100 ms), not after a session backoff (15 to 30 s here).
    await until(() => worker.stats().bucketsHeld === 16, 4_000, 'the worker to rejoin');
    const joinErrors = errors.filter((e) => /membership key/.test((e.error as Error).message));
    expect(joinErrors.map((e) => (e.error as { code?: string }).code)).toEqual(['UNAVAILABLE']);
    expect((joinErrors[0]!.error as Error).message).toMatch(/its own lost session/);
    await worker.stop();
    await run;
  });

  it('a second worker with the same id is refused with CONFIG_INVALID naming the id', async () => {
    const store = new MemoryLockStore();
    const locks = () => new MemoryLockProvider({ store, ttlMs: 5_000, lockDelayMs: 0 });
    const source = new MemoryTaskSource();
    const first = bucketWorker(locks(), source, { id: 'same' });
    const firstRun = first.run();
    await until(() => first.stats().bucketsHeld === 16, 5_000, 'the first worker');
    const second = bucketWorker(locks(), source, { id: 'same' });
    const seen = nextEvent(second, 'error', (e) => /membership key/.test((e.error as Error).message));
    const secondRun = second.run();
    const { error } = await seen;
    expect(error).toMatchObject({ code: 'CONFIG_INVALID' });
    expect((error as Error).message).toMatch(/'same'.*unique id/s);
    expect(first.stats().bucketsHeld).toBe(16);
    await Promise.all([first.stop(), second.stop()]);
    await Promise.all([firstRun, secondRun]);
  });

  it('a task that fails is retried inside the same lease with a higher token, then completes', async () => {
    const locks = new MemoryLockProvider({ ttlMs: 5_000, lockDelayMs: 0 });
    const source = new MemoryTaskSource({ retryDelayMs: () => 0 });
    const [id] = await source.enqueue({ kind: 'flaky', maxAttempts: 3 });
    const fences: number[] = [];
    const worker = bucketWorker(locks, source, {
      schedule: { every: 20 },
      handler: ({ fence }) => {
        fences.push(fence);
        if (fences.length === 1) throw new Error('first attempt fails');
        return 'second time';
      },
    });
    const run = worker.run();
    await until(() => source.counts().done === 1, 10_000, 'the retry');
    expect(fences).toHaveLength(2);
    expect(fences[1]).toBeGreaterThan(fences[0]!);
    expect(worker.stats()).toMatchObject({ bucketsAcquired: 16, failed: 1, completed: 1 });
    expect(await source.get(id!)).toMatchObject({ status: 'done', attempts: 2, result: 'second time' });
    await worker.stop();
    await run;
  });

  it('an enqueue wakes the owner of its bucket at once, without waiting for the next poll', async () => {
    const locks = new MemoryLockProvider({ ttlMs: 5_000, lockDelayMs: 0 });
    const source = new MemoryTaskSource();
    const worker = bucketWorker(locks, source, { schedule: { every: 3_600_000 } });
    const run = worker.run();
    await until(() => worker.stats().bucketsHeld === 16, 10_000, 'all buckets');
    await source.enqueue({ kind: 'now' });
    await until(() => source.counts().done === 1, 5_000, 'the woken claim');
    await worker.stop();
    await run;
  });
});

describe('one layout per task table', () => {
  it('a worker of another lease mode or bucket count is refused at start, naming the setting', async () => {
    const store = new MemoryLockStore();
    const locks = () => new MemoryLockProvider({ store, ttlMs: 5_000, lockDelayMs: 0 });
    const source = new MemoryTaskSource();
    const first = bucketWorker(locks(), source);
    const run = first.run();
    await until(() => first.layout !== undefined, 5_000, 'the first worker to declare its layout');
    const perTask = new Worker({ locks: locks(), source, handler: () => 'x', schedule: { every: 100 } });
    await expect(perTask.run()).rejects.toMatchObject({ code: 'CONFIG_INVALID', field: 'leaseBy' });
    const other = bucketWorker(locks(), source, { buckets: { count: 32 } });
    await expect(other.run()).rejects.toMatchObject({ code: 'CONFIG_INVALID', field: 'buckets.count' });
    await first.stop();
    await run;
  });

  it('a layout changed under a running worker stops it with an error; nothing it writes applies', async () => {
    const locks = new MemoryLockProvider({ ttlMs: 5_000, lockDelayMs: 0 });
    const source = new MemoryTaskSource();
    const worker = bucketWorker(locks, source);
    const errors = record(worker, 'error');
    const run = worker.run();
    await until(() => worker.stats().bucketsHeld === 16, 5_000, 'buckets');
    await source.changeLeaseLayout({ mode: 'task' });
    await source.enqueue({ kind: 'after the change' });
    await expect(run).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    expect(errors.some((e) => (e.error as { code?: string }).code === 'CONFIG_INVALID')).toBe(true);
    expect(source.counts()).toMatchObject({ pending: 1, done: 0 });
  });
});
