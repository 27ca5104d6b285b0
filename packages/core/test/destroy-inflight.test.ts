import { describe, expect, it } from 'vitest';
import { MemoryLockProvider, MemoryLockStore } from '../src/index.js';

/**
 * `AbstractLockSession.destroy()` while acquisitions are in flight. The memory store applies the session's
 * lock-delay to every key a destroyed session still holds, so a key taken by an acquisition that `destroy()`
 * did not wait for stays blocked for the lock-delay; a key released cleanly is free at once.
 */
describe('AbstractLockSession.destroy with acquisitions in flight', () => {
  const LOCK_DELAY_MS = 3_600_000;

  function setup() {
    const store = new MemoryLockStore();
    const provider = new MemoryLockProvider({ store, lockDelayMs: LOCK_DELAY_MS });
    return { store, provider };
  }

  it('waits for a tryAcquire already sent and releases the key it took, without lock-delay', async () => {
    const { provider } = setup();
    const a = await provider.openSession();
    const attempt = a.tryAcquire('in-flight');
    const destroyed = a.destroy();
    const lease = await attempt;
    await destroyed;
    expect(lease).not.toBeNull();
    expect(lease?.held).toBe(false);
    const b = await provider.openSession();
    expect(await b.tryAcquire('in-flight')).not.toBeNull();
    await provider.close();
  });

  it('waits for a blocking acquire that got a free key and releases it, without lock-delay', async () => {
    const { provider } = setup();
    const a = await provider.openSession();
    const attempt = a.acquire('in-line');
    const destroyed = a.destroy();
    const lease = await attempt;
    await destroyed;
    expect(lease.signal.aborted).toBe(true);
    const b = await provider.openSession();
    expect(await b.tryAcquire('in-line')).not.toBeNull();
    await provider.close();
  });

  it('stops a blocking acquire that waits in line: it rejects with CLOSED and leaves the line', async () => {
    const { store, provider } = setup();
    const holder = await provider.openSession();
    expect(await holder.tryAcquire('held')).not.toBeNull();
    const a = await provider.openSession();
    const waiting = a.acquire('held');
    waiting.catch(() => undefined);
    for (let i = 0; i < 100 && store.waiters('held').length === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(store.waiters('held')).toHaveLength(1);
    await a.destroy();
    await expect(waiting).rejects.toMatchObject({ code: 'CLOSED' });
    expect(store.waiters('held')).toHaveLength(0);
    await provider.close();
  });

  it('stops a racing blocking acquire (no waiting line) the same way', async () => {
    const { provider } = setup();
    const holder = await provider.openSession();
    expect(await holder.tryAcquire('raced')).not.toBeNull();
    const a = await provider.openSession();
    // The racing acquire is the one a backend without a waiting line uses.
    Object.defineProperty(a, 'waitingLine', { value: () => undefined });
    const waiting = a.acquire('raced');
    waiting.catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 20));
    await a.destroy();
    await expect(waiting).rejects.toMatchObject({ code: 'CLOSED' });
    await provider.close();
  });
});
