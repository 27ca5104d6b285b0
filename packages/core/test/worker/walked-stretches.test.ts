import { describe, expect, it } from 'vitest';
import { MemoryTaskSource, Worker } from '../../src/index.js';
import { WalkedStretches } from '../../src/worker/walked-stretches.js';
import { memoryLocks, record } from './helpers.js';

const key = (n: number) => n.toString().padStart(4, '0');

/** A repeatable stand-in for Math.random (a linear congruential generator). */
function seeded(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

describe('WalkedStretches', () => {
  it('remembers what earlier streams walked, not the current one', () => {
    const walked = new WalkedStretches();
    for (const n of [10, 11, 15, 20]) walked.walk(key(n));
    expect(walked.has(key(12))).toBe(false);
    walked.endStream();
    for (const n of [10, 12, 13, 20]) expect(walked.has(key(n)), key(n)).toBe(true);
    for (const n of [0, 9, 21, 99]) expect(walked.has(key(n)), key(n)).toBe(false);
  });

  it('understands streams that wrapped around the end of the order', () => {
    const walked = new WalkedStretches();
    for (const n of [80, 90, 99, 0, 5]) walked.walk(key(n));
    walked.endStream();
    for (const n of [80, 95, 99, 0, 3, 5]) expect(walked.has(key(n)), key(n)).toBe(true);
    for (const n of [6, 50, 79]) expect(walked.has(key(n)), key(n)).toBe(false);
  });

  it('keeps one stretch per stream, however many tasks the streams walked', () => {
    const walked = new WalkedStretches();
    for (let stream = 0; stream < 3; stream++) {
      for (let n = 0; n < 10_000; n++) walked.walk(`${stream}:${key(n)}`);
      walked.endStream();
    }
    expect(walked.size).toBe(3);
    walked.endStream();
    expect(walked.size).toBe(3);
  });
});

describe('Worker: a pass that hops attempts each task at most once', () => {
  it('hops away from held locks, never retries a task within the pass, and still reaches every free task', async () => {
    const { provider } = memoryLocks();
    const source = new MemoryTaskSource();
    const ids = await source.enqueue(
      Array.from({ length: 120 }, (_, n) => ({ kind: 'hop', payload: { n } })),
    );
    const held = new Set(ids.filter((_, n) => n % 7 === 3));
    const other = await provider().openSession();
    for (const id of held) expect(await other.tryAcquire(`hop/${id}`)).not.toBeNull();

    const ran: string[] = [];
    const worker = new Worker({
      id: 'hopper',
      locks: provider(),
      source,
      lockKey: (task) => `hop/${task.id}`,
      handler: ({ task }) => {
        ran.push(task.id);
      },
      concurrency: 4,
      attemptsInFlight: 1,
      pageSize: 8,
      random: seeded(7),
    });
    const locked = record(worker, 'skipped-locked');
    const started = record(worker, 'task-started');

    const summary = await worker.runOnce();
    expect(summary.hops).toBeGreaterThanOrEqual(5);
    const attempts = [...locked.map((event) => event.taskId), ...started.map((event) => event.task.id)];
    expect(attempts.length).toBe(summary.lockAttempts);
    expect(new Set(attempts).size).toBe(attempts.length); // no task attempted twice in the pass
    expect([...ran].sort()).toEqual(ids.filter((id) => !held.has(id)).sort()); // one pass reached every free task
    expect(new Set(locked.map((event) => event.taskId))).toEqual(held);
    await worker.stop();
    await other.destroy();
  });
});
