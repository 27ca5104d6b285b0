import { describe, expect, it } from 'vitest';
import { Election, type Leadership, MemoryLockProvider, MemoryTaskSource, Worker } from '../../src/index.js';

function until(predicate: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (predicate()) return resolve();
      if (Date.now() - started > timeoutMs) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 10);
    };
    tick();
  });
}

describe('Worker leader-only hook', () => {
  it('runs the function on exactly one worker, hands over on stop, and every worker runs tasks', async () => {
    const locks = new MemoryLockProvider({ ttlMs: 2_000, lockDelayMs: 0 });
    const source = new MemoryTaskSource();
    const key = `leader/${Math.random()}`;
    const leading = new Set<string>();
    let maxConcurrentLeaders = 0;
    const terms: number[] = [];
    const executedBy = new Map<string, string>();
    const make = (id: string) =>
      new Worker({
        id,
        locks,
        source,
        schedule: { every: 20 },
        sessionOptions: { ttlMs: 2_000, lockDelayMs: 0 },
        handler: async ({ task }) => {
          executedBy.set(task.id, id);
        },
        leader: {
          key,
          recampaignDelayMs: 10,
          run: async (leadership: Leadership) => {
            leading.add(id);
            maxConcurrentLeaders = Math.max(maxConcurrentLeaders, leading.size);
            terms.push(leadership.term);
            // The leader schedules work for everyone.
            await source.enqueue(Array.from({ length: 20 }, (_, i) => ({ kind: 'batch', payload: { i } })));
            await new Promise((resolve) =>
              leadership.signal.addEventListener('abort', resolve, { once: true }),
            );
            leading.delete(id);
          },
        },
      });
    const workers = [make('w1'), make('w2'), make('w3')];
    const runs = workers.map((w) => w.run());
    await until(() => leading.size === 1 && executedBy.size >= 20, 'a leader and its batch done');
    const election = new Election(locks, key);
    const first = [...leading][0]!;
    expect((await election.leader())?.id).toBe(first);

    const firstWorker = workers.find((w) => w.id === first)!;
    const stoppedAt = Date.now();
    await firstWorker.stop();
    expect(leading.has(first)).toBe(false);
    await until(() => leading.size === 1, 'the next leader');
    expect(Date.now() - stoppedAt).toBeLessThan(1_500); // a clean resign hands over well within one TTL
    expect(terms[1]).toBeGreaterThan(terms[0]!);
    await until(() => executedBy.size >= 40, 'the second batch');

    await Promise.all(workers.map((w) => w.stop()));
    await Promise.all(runs);
    expect(maxConcurrentLeaders).toBe(1);
    expect(leading.size).toBe(0);
    expect(await election.leader()).toBeNull();
    expect(new Set(executedBy.values()).size).toBeGreaterThan(1);
    await locks.close();
  });

  it('emits leader-elected and leader-ended with the term', async () => {
    const locks = new MemoryLockProvider({ ttlMs: 2_000, lockDelayMs: 0 });
    const worker = new Worker({
      locks,
      source: new MemoryTaskSource(),
      handler: async () => undefined,
      leader: {
        key: 'leader/events',
        run: (leadership) =>
          new Promise((resolve) =>
            leadership.signal.addEventListener('abort', () => resolve(), { once: true }),
          ),
      },
    });
    const events: string[] = [];
    worker.on('leader-elected', (e) => events.push(`elected:${e.term}`));
    worker.on('leader-ended', (e) => events.push(`ended:${e.term}`));
    const running = worker.run();
    await until(() => events.length === 1, 'elected');
    await worker.stop();
    await running;
    expect(events).toHaveLength(2);
    expect(events[1]).toBe(events[0]!.replace('elected', 'ended'));
    await locks.close();
  });

  it('rejects a leader option without a key or function', () => {
    const base = {
      locks: new MemoryLockProvider(),
      source: new MemoryTaskSource(),
      handler: async () => undefined,
    };
    // @ts-expect-error run is required
    expect(() => new Worker({ ...base, leader: { key: 'k' } })).toThrow(/leader.run/);
    expect(() => new Worker({ ...base, leader: { key: '', run: async () => undefined } })).toThrow(
      /leader.key/,
    );
  });
});
