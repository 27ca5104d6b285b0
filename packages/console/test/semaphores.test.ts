import { type LockProvider, MemoryLockProvider, semaphore } from '@baton/core';
import { afterEach, describe, expect, it } from 'vitest';
import { LocksReader } from '../src/locks-view.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((fn) => fn()));
});

function provider(): MemoryLockProvider {
  const locks = new MemoryLockProvider({ lockDelayMs: 0 });
  cleanups.push(() => locks.close());
  return locks;
}

async function until(condition: () => Promise<boolean>): Promise<void> {
  while (!(await condition())) await new Promise((resolve) => setTimeout(resolve, 10));
}

describe('the semaphores of the locks view', () => {
  it('shows permits held of the limit, their holders, and who waits in line (head, and how many behind)', async () => {
    const locks = provider();
    const [a, b, c, d] = await Promise.all([1, 2, 3, 4].map(() => locks.openSession()));
    const jobs = semaphore(locks, 'limit/report', { limit: 2 });
    const first = await jobs.acquire(a!, { value: 'host-a' });
    const second = await jobs.acquire(b!);
    const stop = new AbortController();
    const waitC = jobs.acquire(c!, { signal: stop.signal }).catch((error: unknown) => error);
    await until(async () => (await locks.getHolder('limit/report/line'))?.sessionId === c!.id);
    const waitD = jobs.acquire(d!, { signal: stop.signal }).catch((error: unknown) => error);
    await until(async () => (await locks.waiters('limit/report/line')).length === 1);

    const view = await new LocksReader(locks, '', []).locks();
    expect(view.semaphores).toHaveLength(1);
    const row = view.semaphores[0]!;
    expect(row).toMatchObject({ name: 'limit/report', limits: [2], free: 0 });
    expect(row.waiting).toEqual({ queued: true, head: c!.id, behind: 1 });
    expect(row.permits.map((p) => [p.slot, p.sessionId, p.fence, p.value])).toEqual(
      [first, second]
        .sort((x, y) => x.slot - y.slot)
        .map((p) => [p.slot, p.sessionId, p.fence, p.value ?? null]),
    );
    for (const permit of row.permits) {
      expect(permit.acquiredAtSource).toBe('server');
      expect(permit.ageMs).toBeGreaterThanOrEqual(0);
    }

    stop.abort();
    await Promise.all([waitC, waitD]);
    await first.release();
    const after = (await new LocksReader(locks, '', []).locks()).semaphores[0]!;
    expect(after).toMatchObject({ limits: [2], free: 1, waiting: { queued: true, head: null, behind: 0 } });
    expect(after.permits.map((p) => p.sessionId)).toEqual([b!.id]);
    await second.release();
    expect((await new LocksReader(locks, '', []).locks()).semaphores).toEqual([]);
  });

  it('says when waiters keep no line (a backend without a fair line served on a watch)', async () => {
    const memory = provider();
    const racing: LockProvider = {
      backend: 'racing',
      capabilities: { ...memory.capabilities, fairQueue: false, waiters: false },
      clock: memory.clock,
      openSession: (options) => memory.openSession(options),
      getHolder: (key, options) => memory.getHolder(key, options),
      watch: (key, options) => memory.watch(key, options),
      list: (prefix) => memory.list(prefix),
      close: () => memory.close(),
      [Symbol.asyncDispose]: () => memory.close(),
    };
    const session = await memory.openSession();
    await semaphore(racing, 'limit/mail', { limit: 3 }).tryAcquire(session);
    const [row] = (await new LocksReader(racing, '', []).locks()).semaphores;
    expect(row).toMatchObject({ name: 'limit/mail', limits: [3], free: 2 });
    expect(row!.waiting).toEqual({ queued: false, head: null, behind: null });
  });

  it('shows every limit in use when processes disagree, with no free count', async () => {
    const locks = provider();
    const [a, b] = [await locks.openSession(), await locks.openSession()];
    // Two processes configured with different limits, each holding a slot (as the permits record them).
    await semaphore(locks, 'sem', { limit: 3 }).tryAcquire(a);
    await b.tryAcquire('sem/slot/7', { value: JSON.stringify({ limit: 8 }) });
    const [row] = (await new LocksReader(locks, '', []).locks()).semaphores;
    expect(row).toMatchObject({ name: 'sem', limits: [3, 8], free: null });
    expect(row!.permits).toHaveLength(2);
  });
});
