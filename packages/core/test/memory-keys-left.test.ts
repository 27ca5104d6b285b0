import { describe, expect, it } from 'vitest';
import { type LockHolder, ManualClock, MemoryLockStore } from '../src/index.js';

// Issue 15: the memory store kept a record (and a grant record) per key it ever granted, so a long-running
// process grew with every task. Free keys now go, once no lock-delay or lockAtLeastFor window runs on them.
describe('MemoryLockStore keeps no record of free keys', () => {
  it('released keys leave nothing; 10,000 task locks leave no key and no grant record', () => {
    const store = new MemoryLockStore({ clock: new ManualClock() });
    const session = store.createSession({ ttlMs: 10_000, lockDelayMs: 1_000 });
    let last = 0;
    for (let n = 0; n < 10_000; n++) {
      const grant = store.acquire(session, `task/${n}`, {});
      expect(grant!.fence).toBeGreaterThan(last);
      last = grant!.fence;
      expect(store.release(session, `task/${n}`, grant!.fence)).toBe(true);
    }
    expect(store.keyCount()).toBe(0);
    expect(store.history()).toEqual([]);
    // A key taken again after its record went still gets a higher fence.
    expect(store.acquire(session, 'task/0', {})!.fence).toBeGreaterThan(last);
  });

  it('a lock-delay or lockAtLeastFor window keeps the key (and blocks it) until it has passed', async () => {
    const clock = new ManualClock();
    const store = new MemoryLockStore({ clock });
    const crashed = store.createSession({ ttlMs: 1_000, lockDelayMs: 5_000 });
    const other = store.createSession({ ttlMs: 60_000, lockDelayMs: 0 });
    for (let n = 0; n < 3; n++) expect(store.acquire(crashed, `crashed/${n}`, {})).not.toBeNull();
    const long = store.acquire(other, 'long', { lockAtLeastForMs: 2_000 })!;
    expect(store.release(other, 'long', long.fence)).toBe(true);
    await clock.advance(1_000); // the crashed session expires: lock-delay on its 3 keys
    expect(store.keyCount()).toBe(4);
    expect(store.acquire(other, 'crashed/0', {})).toBeNull();
    expect(store.acquire(other, 'long', {})).toBeNull();
    await clock.advance(1_000);
    expect(store.keyCount()).toBe(3); // lockAtLeastFor over: 'long' went
    await clock.advance(4_000);
    expect(store.keyCount()).toBe(0); // lock-delay over
    expect(store.acquire(other, 'crashed/0', {})).not.toBeNull();
  });

  it('a watcher of a key follows it through its record going and coming back', async () => {
    const store = new MemoryLockStore({ clock: new ManualClock() });
    const a = store.createSession({ ttlMs: 10_000, lockDelayMs: 0 });
    const controller = new AbortController();
    const seen: Array<LockHolder | null> = [];
    const following = (async () => {
      for await (const holder of store.subscribe('k', controller.signal)) {
        seen.push(holder);
        if (seen.length === 4) controller.abort();
      }
    })();
    await new Promise((resolve) => setImmediate(resolve));
    const first = store.acquire(a, 'k', { value: 'one' })!;
    await new Promise((resolve) => setImmediate(resolve));
    store.release(a, 'k', first.fence);
    expect(store.keyCount()).toBe(0);
    await new Promise((resolve) => setImmediate(resolve));
    const second = store.acquire(a, 'k', { value: 'two' })!;
    await following;
    expect(seen.map((h) => h?.value ?? null)).toEqual([null, 'one', null, 'two']);
    expect(seen[3]!.fence).toBe(second.fence);
  });
});
