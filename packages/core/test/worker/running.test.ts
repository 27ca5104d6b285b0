import { describe, expect, it } from 'vitest';
import { MemoryTaskSource, Worker } from '../../src/index.js';
import { gate, memoryLocks, until } from './helpers.js';

describe('Worker.running()', () => {
  for (const leaseBy of ['task', 'bucket'] as const) {
    it(`lists the tasks whose handlers run, with kind, fence, lock key and run time (${leaseBy} mode)`, async () => {
      const { provider } = memoryLocks();
      const source = new MemoryTaskSource();
      const [a, b] = await source.enqueue([{ kind: 'resize' }, { kind: 'mail' }]);
      const release = gate();
      const worker = new Worker({
        id: `running-${leaseBy}`,
        locks: provider(),
        source,
        leaseBy,
        ...(leaseBy === 'bucket' ? { buckets: { count: 2 } } : {}),
        schedule: { every: 10 },
        handler: () => release.promise,
      });
      expect(worker.running()).toEqual([]);
      const run = worker.run();
      await until(() => worker.running().length === 2, 10_000, 'both handlers running');
      const running = worker.running().sort((x, y) => Number(x.taskId) - Number(y.taskId));
      expect(running.map((r) => [r.taskId, r.kind])).toEqual([
        [a, 'resize'],
        [b, 'mail'],
      ]);
      for (const r of running) {
        const task = await source.get(r.taskId);
        expect(r.fence).toBe(task!.fence);
        expect(r.runningMs).toBeGreaterThanOrEqual(0);
        if (leaseBy === 'task') {
          expect(r.lockKey).toBe(`task/${r.taskId}`);
          expect(r.bucket).toBeUndefined();
        } else {
          expect(r.lockKey).toMatch(/\/b\/[01]$/);
          expect([0, 1]).toContain(r.bucket);
        }
      }
      release.open();
      await until(() => worker.running().length === 0, 10_000, 'handlers finished');
      await worker.stop();
      await run;
    });
  }
});
