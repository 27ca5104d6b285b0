import { describe, expect, it } from 'vitest';
import {
  type LockHolder,
  MemoryLockProvider,
  semaphore,
  semaphoreQueues,
  semaphoresIn,
} from '../src/index.js';

describe('semaphoresIn(): the semaphores among listed locks', () => {
  it('groups real permits by semaphore, in slot order, with the limit and the head of the waiting line', async () => {
    await using locks = new MemoryLockProvider({ ttlMs: 1_000, lockDelayMs: 0 });
    expect(semaphoreQueues(locks)).toBe(true);
    const a = await locks.openSession();
    const b = await locks.openSession();
    const jobs = semaphore(locks, 'limit/jobs', { limit: 2 });
    const mail = semaphore(locks, 'limit/mail', { limit: 3 });
    const first = await jobs.acquire(a, { value: 'host-a' });
    const second = await jobs.acquire(b);
    const third = await mail.acquire(a);
    const plain = await a.tryAcquire('plain/key', { value: 'not a permit' });
    const lookalike = await a.tryAcquire('fake/slot/0', { value: 'no recorded limit' });
    expect(plain && lookalike).toBeTruthy();

    const waiting = new AbortController();
    const waiter = jobs.acquire(b, { signal: waiting.signal }).catch((error: unknown) => error);
    await expect.poll(async () => (await locks.getHolder('limit/jobs/line'))?.sessionId).toBe(b.id);

    const census = semaphoresIn(await locks.list());
    expect(census.map((s) => s.name)).toEqual(['limit/jobs', 'limit/mail']);
    const [jobsCensus, mailCensus] = census;
    expect(jobsCensus!.limits).toEqual([2]);
    expect(jobsCensus!.permits.map((p) => [p.slot, p.sessionId, p.fence, p.value])).toEqual(
      [first, second].sort((x, y) => x.slot - y.slot).map((p) => [p.slot, p.sessionId, p.fence, p.value]),
    );
    expect(jobsCensus!.lineHead?.sessionId).toBe(b.id);
    expect(mailCensus).toMatchObject({ limits: [3], lineHead: null });
    expect(mailCensus!.permits.map((p) => p.slot)).toEqual([third.slot]);

    waiting.abort();
    await waiter;
    await first.release();
    expect(semaphoresIn(await locks.list())[0]).toMatchObject({ name: 'limit/jobs', lineHead: null });
    expect(semaphoresIn(await locks.list())[0]!.permits.map((p) => p.sessionId)).toEqual([b.id]);
  });

  it('shows every limit in use when processes disagree about it', () => {
    const holder = (key: string, limit: number, fence: number): LockHolder => ({
      key,
      sessionId: `s${fence}`,
      fence,
      value: JSON.stringify({ limit }),
    });
    const census = semaphoresIn([holder('sem/slot/3', 4, 7), holder('sem/slot/0', 2, 5)]);
    expect(census).toEqual([
      {
        name: 'sem',
        limits: [2, 4],
        permits: [
          { slot: 0, key: 'sem/slot/0', sessionId: 's5', fence: 5, limit: 2, value: undefined },
          { slot: 3, key: 'sem/slot/3', sessionId: 's7', fence: 7, limit: 4, value: undefined },
        ],
        lineHead: null,
      },
    ]);
  });
});
