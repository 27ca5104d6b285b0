import { describe, expect, it } from 'vitest';
import { MemoryLockProvider, pollingWatch } from '../src/index.js';

const keepAlive = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

describe('waiting calls keep the process alive; background timers do not', () => {
  it('a blocking acquire holds the process while it waits and lets go after', async () => {
    const provider = new MemoryLockProvider({ ttlMs: 5_000 });
    const base = keepAlive();
    const [a, b] = [await provider.openSession(), await provider.openSession()];
    expect(keepAlive()).toBe(base);
    const held = await a.tryAcquire('hold/k');
    const waiting = b.acquire('hold/k');
    await new Promise((r) => setImmediate(r));
    expect(keepAlive()).toBe(base + 1);
    await held!.release();
    await waiting;
    expect(keepAlive()).toBe(base);
    await provider.close();
  });

  it('a polling watch holds the process until the consumer stops', async () => {
    const base = keepAlive();
    const controller = new AbortController();
    const iterator = pollingWatch(async () => null, { signal: controller.signal, pollIntervalMs: 20 })[
      Symbol.asyncIterator
    ]();
    await iterator.next();
    expect(keepAlive()).toBeGreaterThan(base);
    controller.abort();
    await iterator.return?.(undefined);
    expect(keepAlive()).toBe(base);
  });
});

describe('a running worker keeps the process alive between passes', () => {
  it('holds a referenced timer while run() is pending and lets go after stop()', async () => {
    const { Worker, MemoryTaskSource } = await import('../src/index.js');
    const locks = new MemoryLockProvider({ ttlMs: 5_000 });
    const base = keepAlive();
    const worker = new Worker({
      locks,
      source: new MemoryTaskSource(),
      handler: async () => undefined,
      schedule: { every: 3_600_000 },
    });
    const running = worker.run();
    await new Promise((r) => setTimeout(r, 50));
    expect(keepAlive()).toBeGreaterThan(base);
    await worker.stop();
    await running;
    expect(keepAlive()).toBe(base);
    await locks.close();
  });
});
