import { afterEach, describe, expect, it } from 'vitest';
import {
  type BucketSettlements,
  type LockProvider,
  MemoryLockProvider,
  MemoryLockStore,
  type MemorySession,
  MemoryTaskSource,
  type SessionOptions,
  type SettleResult,
  type Task,
  type TryAcquireOptions,
  UnavailableError,
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

/** A memory provider that counts its sessions' tryAcquire calls on bucket keys (`…/b/<n>`). */
class BucketAttemptCounting extends RecordingProvider {
  bucketAttempts = 0;
  override async openSession(options?: Parameters<MemoryLockProvider['openSession']>[0]) {
    const session = await super.openSession(options);
    const tryAcquire = session.tryAcquire.bind(session);
    session.tryAcquire = async (key: string, opts?: TryAcquireOptions) => {
      if (/\/b\/\d+$/.test(key)) this.bucketAttempts++;
      return tryAcquire(key, opts);
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

  it('a balancing round takes up to 8 buckets at once; a transport error on one attempt leaks none of the others', async () => {
    class SlowLocks extends MemoryLockProvider {
      inFlight = 0;
      most = 0;
      failed = false;
      override async openSession(options?: SessionOptions): Promise<MemorySession> {
        const session = await super.openSession(options);
        const tryAcquire = session.tryAcquire.bind(session);
        session.tryAcquire = async (key, opts) => {
          if (!key.includes('/b/')) return tryAcquire(key, opts);
          this.inFlight++;
          this.most = Math.max(this.most, this.inFlight);
          try {
            await new Promise((resolve) => setTimeout(resolve, 5));
            if (!this.failed) {
              this.failed = true;
              throw new UnavailableError('the lock server did not answer');
            }
            return await tryAcquire(key, opts);
          } finally {
            this.inFlight--;
          }
        };
        return session;
      }
    }
    const locks = new SlowLocks({ ttlMs: 5_000, lockDelayMs: 0 });
    const worker = bucketWorker(locks, new MemoryTaskSource());
    const errors = record(worker, 'error');
    const run = worker.run();
    await until(() => worker.stats().bucketsHeld === 16, 10_000, 'all 16 buckets');
    expect(locks.most).toBeGreaterThan(1);
    expect(locks.most).toBeLessThanOrEqual(8);
    expect(errors.map((e) => e.phase)).toContain('buckets');
    // What the round took beside the failed attempt was adopted: every bucket key is this worker's lease.
    expect(worker.stats()).toMatchObject({ bucketsAcquired: 16, bucketsHeld: 16, bucketsLost: 0 });
    const held = (await locks.list('buckets/')).filter((h) => h.key.includes('/b/'));
    expect(held).toHaveLength(16);
    expect(new Set(held.map((h) => h.sessionId)).size).toBe(1);
    await worker.stop();
    await run;
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

  it('after a crash, survivors do not hammer buckets held back by the lock-delay (one try per round, not four)', {
    timeout: 20_000,
  }, async () => {
    const store = new MemoryLockStore();
    const link = new CuttableStore(store);
    const source = new MemoryTaskSource();
    const lockDelayMs = 2_000;
    const crashingLocks = new RecordingProvider({ store: link.asStore, ttlMs: 60_000, lockDelayMs });
    const crashing = bucketWorker(crashingLocks, source, {
      id: 'a',
      retry: { baseMs: 30_000, maxMs: 30_000 },
    });
    const survivorLocks = new BucketAttemptCounting({ store, ttlMs: 60_000, lockDelayMs });
    const survivor = bucketWorker(survivorLocks, source, {
      id: 'b',
      buckets: { count: 16, balanceIntervalMs: 200 },
    });
    const runs = [crashing.run(), survivor.run()];
    const held = () => [crashing, survivor].map((w) => w.stats().bucketsHeld);
    await until(() => held().join() === '8,8', 10_000, `8 buckets each (held ${held()})`);
    // The process of 'a' dies: nothing it sends arrives, and the server invalidates its session (as at expiry):
    // its 8 buckets look free to 'b' at once but stay blocked for the lock-delay.
    link.cut = true;
    const before = survivorLocks.bucketAttempts;
    store.destroySession(crashingLocks.last.id);
    await until(() => survivor.stats().bucketsHeld === 16, 10_000, 'the survivor takes all 16');
    const attempts = survivorLocks.bucketAttempts - before;
    // 8 buckets tried each round for the 2 s lock-delay: about 10 rounds at the 200 ms interval (after two
    // quick ones, before the worker knows they are blocked), plus the round that takes them; four times as many
    // at the quick pace a worker below its share keeps while it gets somewhere.
    expect(attempts).toBeGreaterThanOrEqual(8);
    expect(attempts).toBeLessThanOrEqual(8 * (lockDelayMs / 200 + 6));
    await survivor.stop();
    link.cut = false;
    await crashing.stop({ graceMs: 0 });
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

  it('a settle whose reply was lost is recognised as applied although a newer lease refuses the retry', async () => {
    // spec/buckets.pml's counterexample (docs/verification.md): the first settle applies and its reply is
    // lost; before the retry, a newer holder of the bucket claims; the retry is refused as a whole. Read back,
    // the task shows the worker's own token and `done`: a completion, not a stale write.
    class ReplyLostThenTakenOver extends MemoryTaskSource {
      lost = 0;
      override async settleBuckets(batches: readonly BucketSettlements[]): Promise<SettleResult[]> {
        const result = await super.settleBuckets(batches);
        if (this.lost++ === 0) {
          const { lease } = batches[0]!;
          await this.claimBucket({ ...lease, fence: lease.fence + 1_000 }, 'successor', 10);
          throw new UnavailableError('the reply was lost', { cause: new Error('ECONNRESET') });
        }
        return result;
      }
    }
    const locks = new MemoryLockProvider({ ttlMs: 5_000, lockDelayMs: 0 });
    const source = new ReplyLostThenTakenOver();
    const [id] = await source.enqueue({ kind: 'once' });
    const worker = bucketWorker(locks, source, {
      buckets: { count: 1, balanceIntervalMs: 100 },
      retry: { baseMs: 10 },
      handler: () => 'ran',
    });
    const completed = record(worker, 'task-completed');
    const stale = record(worker, 'stale-write');
    const run = worker.run();
    await until(() => completed.length + stale.length > 0, 10_000, 'the outcome to be reported');
    expect(source.lost).toBe(2);
    expect(await source.get(id!)).toMatchObject({ status: 'done', result: 'ran' });
    expect(stale).toEqual([]);
    expect(completed.map((e) => e.task.id)).toEqual([id]);
    expect(worker.stats()).toMatchObject({ completed: 1, staleWrites: 0 });
    await worker.stop({ graceMs: 0 });
    await run;
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

  it('a busy worker tops up its claimed-ahead tasks in batches of half the prefetch, not one per finished handler', async () => {
    const locks = new MemoryLockProvider({ ttlMs: 5_000, lockDelayMs: 0 });
    const source = new MemoryTaskSource();
    await source.enqueue(Array.from({ length: 2_000 }, (_, n) => ({ kind: 'n', payload: n })));
    const limits: number[] = [];
    const claimBucket = source.claimBucket.bind(source);
    source.claimBucket = (lease, workerId, limit) => {
      limits.push(limit);
      return claimBucket(lease, workerId, limit);
    };
    const claimBuckets = source.claimBuckets.bind(source);
    source.claimBuckets = (leases, workerId, limit) => {
      limits.push(limit);
      return claimBuckets(leases, workerId, limit);
    };
    const worker = bucketWorker(locks, source, {
      schedule: { once: true },
      buckets: { count: 4, batchSize: 64, prefetch: 64 },
      concurrency: 4,
    });
    await worker.run();
    expect(source.counts()).toMatchObject({ done: 2_000 });
    // Every claim asks for at least half the prefetch (32); only a bucket's last claims come back short.
    expect(Math.min(...limits)).toBeGreaterThanOrEqual(32);
    expect(worker.stats().claimBatches).toBeLessThanOrEqual(2_000 / 32 + 2 * 4);
  });

  it('a worker holding many buckets fills its free slots across them with one claimBuckets call, not one claim per bucket', async () => {
    const locks = new MemoryLockProvider({ ttlMs: 5_000, lockDelayMs: 0 });
    const source = new MemoryTaskSource();
    // About 6 tasks per bucket: a claim that stopped at a bucket's end would take 6 at most.
    await source.enqueue(Array.from({ length: 96 }, (_, n) => ({ kind: 'n', payload: n })));
    const calls: Array<{ buckets: number; limit: number; claimed: number }> = [];
    const claimBuckets = source.claimBuckets.bind(source);
    source.claimBuckets = async (leases, workerId, limit, options) => {
      const results = await claimBuckets(leases, workerId, limit, options);
      const claimed = results.reduce((n, r) => n + (r.ok ? r.tasks.length : 0), 0);
      calls.push({ buckets: leases.length, limit, claimed });
      return results;
    };
    const claimBucket = source.claimBucket.bind(source);
    let single = 0;
    source.claimBucket = (...args) => {
      single++;
      return claimBucket(...args);
    };
    const seen = completions([
      bucketWorker(locks, source, {
        schedule: { once: true },
        buckets: { count: 16, batchSize: 64, prefetch: 64 },
        concurrency: 4,
      }),
    ]);
    await workers[0]!.run();
    expect(source.counts()).toMatchObject({ done: 96, running: 0 });
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    expect(calls.length).toBeGreaterThan(0);
    // At most 8 buckets a call, each a lease the worker holds; the first calls fill the limit across buckets.
    expect(Math.max(...calls.map((c) => c.buckets))).toBeLessThanOrEqual(8);
    expect(Math.max(...calls.map((c) => c.claimed))).toBeGreaterThan(16);
    expect(workers[0]!.stats().claimBatches).toBeLessThan(16);
    expect(single).toBeLessThan(16);
  });

  it('with a source without claimBuckets the worker claims bucket by bucket', async () => {
    const locks = new MemoryLockProvider({ ttlMs: 5_000, lockDelayMs: 0 });
    const source = new MemoryTaskSource();
    Object.defineProperty(source, 'claimBuckets', { value: undefined });
    await source.enqueue(Array.from({ length: 96 }, (_, n) => ({ kind: 'n', payload: n })));
    const withTasks = new Set<number>();
    const claimBucket = source.claimBucket.bind(source);
    source.claimBucket = async (...args) => {
      const result = await claimBucket(...args);
      if (result.ok && result.tasks.length > 0) withTasks.add(args[0].bucket);
      return result;
    };
    const seen = completions([
      bucketWorker(locks, source, {
        schedule: { once: true },
        buckets: { count: 16, batchSize: 64, prefetch: 64 },
        concurrency: 4,
      }),
    ]);
    await workers[0]!.run();
    expect(source.counts()).toMatchObject({ done: 96, running: 0 });
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    // Every bucket that holds a task needs a claim of its own.
    expect(withTasks.size).toBeGreaterThan(8);
    expect(workers[0]!.stats().claimBatches).toBeGreaterThanOrEqual(withTasks.size);
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

describe('membership across sessions', () => {
  /** The session holding worker `id`'s membership key (bucket keys are named after the source's namespace). */
  const memberSession = (store: MemoryLockStore, id: string) =>
    store.list('buckets/').find((h) => h.key.endsWith(`/m/${id}`))?.sessionId;

  // Found by the chaos run in bucket mode (Consul, a leader election): the worker gave its session up (no
  // renewal got through for a TTL) while the server kept it alive, so its membership key was still held by
  // that old session when the worker joined again on a new one. It reported CONFIG_INVALID ("another live
  // worker already uses the id") every balancing retry, backing off further each time, until the old session
  // expired.
  it('a worker whose old session the backend still keeps loses its buckets with it, and rejoins once it expires without an error', {
    timeout: 30_000,
  }, async () => {
    const store = new MemoryLockStore({ ttlMultiplier: 4 });
    const locks = new RecordingProvider({ store, ttlMs: 300, lockDelayMs: 0 });
    const source = new MemoryTaskSource();
    const worker = bucketWorker(locks, source, { id: 'w' });
    const errors = record(worker, 'error');
    const run = worker.run();
    await until(() => worker.stats().bucketsHeld === 16, 10_000, 'all buckets');
    // A partition of this session's requests: renewals fail (the worker gives the session up after its TTL),
    // and so do its releases and its destroy, so the server keeps it, and its keys, until its own expiry
    // (4 × TTL).
    const old = locks.last.id;
    const partitioned = () => {
      throw new UnavailableError('partitioned');
    };
    const renew = store.renewSession.bind(store);
    const release = store.release.bind(store);
    const destroy = store.destroySession.bind(store);
    store.renewSession = (id) => (id === old ? partitioned() : renew(id));
    store.release = (id, key, fence) => (id === old ? partitioned() : release(id, key, fence));
    store.destroySession = (id) => (id === old ? partitioned() : destroy(id));
    let oldAliveAtRejoin: boolean | undefined;
    worker.on('session-opened', () => {
      oldAliveAtRejoin ??= store.hasSession(old);
    });
    await until(() => locks.sessions.length === 2, 10_000, 'a new session');
    await until(
      () => memberSession(store, 'w') === locks.last.id,
      10_000,
      'the membership key on the new session',
    );
    expect(oldAliveAtRejoin).toBe(true);
    // The buckets went with the old session: lost (not handed back), and taken again on the new one.
    expect(worker.stats()).toMatchObject({ bucketsLost: 16, bucketsReleased: 0 });
    await until(() => worker.stats().bucketsHeld === 16, 10_000, 'the buckets again');
    expect(errors.filter((e) => (e.error as { code?: string }).code === 'CONFIG_INVALID')).toEqual([]);
    // And it works: tasks enqueued now run.
    await source.enqueue(Array.from({ length: 20 }, (_, n) => ({ kind: 'n', payload: n })));
    await until(() => source.counts().done === 20, 10_000, 'the tasks');
    await worker.stop();
    await run;
  });

  it('a worker whose membership key is in its lock-delay after its session ended rejoins without an error', {
    timeout: 30_000,
  }, async () => {
    const store = new MemoryLockStore();
    const locks = new RecordingProvider({ store, ttlMs: 600, lockDelayMs: 1_000 });
    const source = new MemoryTaskSource();
    const worker = bucketWorker(locks, source, { id: 'w' });
    const errors = record(worker, 'error');
    const run = worker.run();
    await until(() => worker.stats().bucketsHeld === 16, 10_000, 'all buckets');
    // The backend invalidates the session (an operator, or a health check): its keys are lock-delayed.
    store.destroySession(locks.last.id);
    await until(
      () => locks.sessions.length === 2 && memberSession(store, 'w') === locks.last.id,
      10_000,
      'the membership key on a new session',
    );
    await until(() => worker.stats().bucketsHeld === 16, 10_000, 'the buckets again');
    expect(errors.filter((e) => (e.error as { code?: string }).code === 'CONFIG_INVALID')).toEqual([]);
    await worker.stop();
    await run;
  });

  it('two live workers with one id: the second is told, naming the id and the fix', async () => {
    const store = new MemoryLockStore();
    const locks = () => new MemoryLockProvider({ store, ttlMs: 5_000, lockDelayMs: 0 });
    const source = new MemoryTaskSource();
    const first = bucketWorker(locks(), source, { id: 'twin' });
    const firstRun = first.run();
    await until(() => first.stats().bucketsHeld === 16, 10_000, 'the first worker');
    const second = bucketWorker(locks(), source, { id: 'twin' });
    const errors = record(second, 'error');
    const secondRun = second.run();
    await until(() => errors.length > 0, 10_000, 'an error');
    expect(errors[0]).toMatchObject({ phase: 'buckets', error: { code: 'CONFIG_INVALID' } });
    expect(String(errors[0]!.error)).toMatch(/'twin'.*Fix: give every worker a unique id/s);
    expect(second.stats().bucketsHeld).toBe(0);
    await Promise.all([first.stop(), second.stop()]);
    await Promise.all([firstRun, secondRun]);
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
