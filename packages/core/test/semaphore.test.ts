import { describe, expect, it } from 'vitest';
import { type LockProvider, MAX_SEMAPHORE_LIMIT, MemoryLockProvider, semaphore } from '../src/index.js';

function provider(): MemoryLockProvider {
  return new MemoryLockProvider({ ttlMs: 1_000, lockDelayMs: 0 });
}

/** The same provider without `list()`: the semaphore must read slot by slot. */
function withoutList(real: MemoryLockProvider): LockProvider {
  return {
    backend: real.backend,
    capabilities: { ...real.capabilities, list: false },
    clock: real.clock,
    openSession: (o) => real.openSession(o),
    getHolder: (k) => real.getHolder(k),
    watch: (k, o) => real.watch(k, o),
    close: () => real.close(),
    [Symbol.asyncDispose]: () => real.close(),
  };
}

describe('semaphore()', () => {
  it('refuses a limit or name that cannot work, naming it', () => {
    const locks = provider();
    for (const limit of [0, -1, 1.5, Number.NaN, MAX_SEMAPHORE_LIMIT + 1]) {
      expect(() => semaphore(locks, 'sem', { limit })).toThrow(
        expect.objectContaining({
          code: 'INVALID_ARGUMENT',
          message: expect.stringMatching(/limit must be/),
        }),
      );
    }
    expect(() => semaphore(locks, '', { limit: 1 })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    expect(() => semaphore({} as LockProvider, 'sem', { limit: 1 })).toThrow(/provider/);
  });

  it('records the limit and the holder value in the slot lock, and reports them', async () => {
    const locks = provider();
    const session = await locks.openSession();
    const sem = semaphore(locks, 'jobs', { limit: 2 });
    const permit = await sem.tryAcquire(session, { value: 'host-a' });
    expect(permit).toMatchObject({ name: 'jobs', limit: 2, value: 'host-a', sessionId: session.id });
    expect(permit!.key).toBe(`jobs/slot/${permit!.slot}`);
    const holder = await locks.getHolder(permit!.key);
    expect(JSON.parse(holder!.value!)).toEqual({ limit: 2, value: 'host-a' });
    expect(await sem.holders()).toEqual([
      {
        slot: permit!.slot,
        key: permit!.key,
        sessionId: session.id,
        fence: permit!.fence,
        limit: 2,
        value: 'host-a',
      },
    ]);
    await permit![Symbol.asyncDispose]();
    expect(permit!.signal.aborted).toBe(true);
    expect(await sem.holders()).toEqual([]);
    await locks.close();
  });

  it('reads slot by slot on a backend without list(), and still refuses a mismatched limit', async () => {
    const real = provider();
    const locks = withoutList(real);
    const a = await real.openSession();
    const three = semaphore(locks, 'jobs', { limit: 3 });
    for (let i = 0; i < 3; i++) expect(await three.tryAcquire(a)).not.toBeNull();
    expect((await three.holders()).map((h) => h.slot)).toEqual([0, 1, 2]);
    await expect(semaphore(locks, 'jobs', { limit: 2 }).tryAcquire(a)).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      field: 'limit',
      message: expect.stringMatching(/same limit for the same name/),
    });
    await real.close();
  });

  it('refuses a slot held by something that is not a permit', async () => {
    const locks = provider();
    const a = await locks.openSession();
    expect(await a.tryAcquire('jobs/slot/0', { value: 'not json' })).not.toBeNull();
    await expect(semaphore(locks, 'jobs', { limit: 1 }).tryAcquire(a)).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringMatching(/not one of its permits/),
    });
    await locks.close();
  });

  it('a transport error rejects; it is never reported as a full semaphore', async () => {
    const locks = provider();
    const a = await locks.openSession();
    locks.store.failNext(1);
    await expect(semaphore(locks, 'jobs', { limit: 2 }).tryAcquire(a)).rejects.toMatchObject({
      code: 'UNAVAILABLE',
    });
    locks.store.clearFaults();
    await locks.close();
  });
});
