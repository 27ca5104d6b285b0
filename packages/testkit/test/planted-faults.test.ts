import { type LineCondition, type LockHolder, MemoryLockStore, type StoredWaiter } from '@baton/core';
import { describe, expect, it } from 'vitest';
import {
  exclusivityTests,
  expiryTests,
  fairnessTests,
  fencingTests,
  fuzzTests,
  holderTimesTests,
  type LockSuiteOptions,
  lockProviderSuite,
  memoryHarness,
  releaseTests,
  type TestFn,
  transportTests,
  waitersTests,
} from '../src/index.js';

/** Fence never increases: a per-key counter stuck at 1. */
class ConstantFenceStore extends MemoryLockStore {
  override acquire(...args: Parameters<MemoryLockStore['acquire']>) {
    return super.acquire(...args) ? { fence: 1 } : null;
  }
  override release(sessionId: string, key: string): boolean {
    return super.release(sessionId, key, this.inspect(key)?.fence ?? 0);
  }
}

/** Fence is a per-key counter that restarts when the key is deleted. */
class PerKeyCounterStore extends MemoryLockStore {
  readonly #counters = new Map<string, number>();
  override acquire(...args: Parameters<MemoryLockStore['acquire']>) {
    const key = args[1];
    if (!super.acquire(...args)) return null;
    const next = (this.#counters.get(key) ?? 0) + 1;
    this.#counters.set(key, next);
    return { fence: next };
  }
  override release(sessionId: string, key: string): boolean {
    return super.release(sessionId, key, this.inspect(key)?.fence ?? 0);
  }
  override deleteKey(key: string): void {
    this.#counters.delete(key);
    super.deleteKey(key);
  }
}

/**
 * Release without checking the owner: frees whatever holds the key. Key-change notifications are also
 * turned off, so the session has no monitor to notice the takeover first (as on backends without one).
 */
class UnconditionalReleaseStore extends MemoryLockStore {
  override release(_sessionId: string, key: string): boolean {
    return this.forceRelease(key);
  }
  override async *subscribe(key: string, signal?: AbortSignal): AsyncGenerator<LockHolder | null> {
    yield this.holder(key);
    if (signal && !signal.aborted) await new Promise((resolve) => signal.addEventListener('abort', resolve));
  }
}

/** Transport errors swallowed and reported as "not acquired". */
class SwallowingStore extends MemoryLockStore {
  override acquire(...args: Parameters<MemoryLockStore['acquire']>) {
    try {
      return super.acquire(...args);
    } catch {
      return null;
    }
  }
}

/** Holder lookup that ignores who holds: a lock with no exclusivity at all. */
class NoExclusivityStore extends MemoryLockStore {
  #fence = 1_000;
  override acquire(...args: Parameters<MemoryLockStore['acquire']>) {
    const held = super.acquire(...args);
    return held ?? { fence: ++this.#fence };
  }
  override holder(key: string): LockHolder | null {
    return super.holder(key);
  }
}

/** Sessions never expire on the server. */
class NoExpiryStore extends MemoryLockStore {
  constructor() {
    super({ ttlMultiplier: 1_000 });
  }
}

/** A line served last-come-first-served: waiters are not served in arrival order. */
class LifoLineStore extends MemoryLockStore {
  override waiters(key: string): readonly StoredWaiter[] {
    return [...super.waiters(key)].reverse();
  }
}

/**
 * A blocking acquire that takes a free key although others wait for it: a releasing holder that asks
 * again wins again (what kept leadership with one DynamoDB campaigner before the line existed).
 */
class BargingAcquireStore extends MemoryLockStore {
  override acquire(
    sessionId: string,
    key: string,
    options: Parameters<MemoryLockStore['acquire']>[2],
    line: LineCondition = 'barge',
  ) {
    return super.acquire(sessionId, key, options, line === 'empty' ? 'barge' : line);
  }
}

/** A waiter that gives up is never removed from the line. */
class LeaksAbandonedWaitersStore extends MemoryLockStore {
  override dequeue(): boolean {
    return true;
  }
}

/** The waiter of a session that expired is never removed from the line. */
class LeaksCrashedWaitersStore extends MemoryLockStore {
  override expireWaiter(): void {}
}

/** A remaining lease that is an invented constant (the TTL), not the backend's figure. */
class ConstantLeaseStore extends MemoryLockStore {
  override holder(key: string): LockHolder | null {
    const holder = super.holder(key);
    return holder && { ...holder, leaseRemainingMs: 300 };
  }
}

/** A remaining lease counted down from the acquisition: it ignores the holder's renewals. */
class UnrenewedLeaseStore extends MemoryLockStore {
  override holder(key: string): LockHolder | null {
    const holder = super.holder(key);
    if (!holder?.acquiredAt) return holder;
    return { ...holder, leaseRemainingMs: Math.max(0, 300 - (Date.now() - holder.acquiredAt)) };
  }
}

/** An acquisition time read on the wrong clock (monotonic time, not ms since the epoch). */
class MonotonicStampStore extends MemoryLockStore {
  override holder(key: string): LockHolder | null {
    const holder = super.holder(key);
    return holder && { ...holder, acquiredAt: performance.now() };
  }
}

/** An acquisition time that is the time of the read, not of the acquisition. */
class ReadTimeStampStore extends MemoryLockStore {
  override holder(key: string): LockHolder | null {
    const holder = super.holder(key);
    return holder && { ...holder, acquiredAt: Date.now() };
  }
}

const options: LockSuiteOptions = { expiryBoundMs: 300, granularityMs: 20 };

/** Runs suite groups against a store and returns the names of the cases that failed. */
async function failingCases(
  store: MemoryLockStore,
  groups: Array<
    (test: TestFn, factory: () => Promise<ReturnType<typeof memoryHarness>>, o: LockSuiteOptions) => void
  >,
): Promise<string[]> {
  const cases: Array<[string, () => Promise<void>]> = [];
  const collect: TestFn = (name, fn) => {
    cases.push([name, fn]);
  };
  for (const group of groups) group(collect, async () => memoryHarness({ ttlMs: 300, store }), options);
  const failed: string[] = [];
  for (const [name, fn] of cases) {
    try {
      await fn();
    } catch {
      failed.push(name);
    }
  }
  return failed;
}

describe('the conformance suite catches planted faults', () => {
  it('registers at least 25 cases', () => {
    let count = 0;
    lockProviderSuite(
      () => {
        count++;
      },
      async () => memoryHarness(),
      { ...options, lockDelayMs: 300 },
    );
    expect(count).toBeGreaterThanOrEqual(25);
  });

  it('a fence that never increases', async () => {
    const failed = await failingCases(new ConstantFenceStore(), [fencingTests, fuzzTests]);
    expect(failed.filter((n) => n.startsWith('fencing'))).not.toHaveLength(0);
  }, 60_000);

  it('a per-key fence counter that restarts when the key is re-created', async () => {
    const failed = await failingCases(new PerKeyCounterStore(), [fencingTests]);
    expect(failed).toContain('fencing: increases across deletion and re-creation of the key');
  }, 60_000);

  it('a release that does not check the owner', async () => {
    const failed = await failingCases(new UnconditionalReleaseStore(), [releaseTests]);
    expect(failed).toContain('release: never releases a lock someone else now holds (conditional on owner)');
  }, 60_000);

  it('transport errors reported as "not acquired"', async () => {
    const failed = await failingCases(new SwallowingStore(), [transportTests]);
    expect(failed).toContain('transport: tryAcquire rejects with a typed error, never null');
  }, 60_000);

  it('no exclusivity', async () => {
    const failed = await failingCases(new NoExclusivityStore(), [exclusivityTests, fuzzTests]);
    expect(failed.length).toBeGreaterThanOrEqual(3);
  }, 60_000);

  it('sessions that never expire', async () => {
    const failed = await failingCases(new NoExpiryStore(), [expiryTests]);
    expect(failed).toContain('expiry: after a crash another session gets the key within the bound');
  }, 60_000);

  it('a line that does not serve waiters in arrival order', async () => {
    const failed = await failingCases(new LifoLineStore(), [fairnessTests]);
    expect(failed).toContain('fair queue: waiters are served in the order they started waiting');
    expect(failed).toContain(
      'fair queue: a holder that releases and asks again goes to the back of the line',
    );
  }, 60_000);

  it('a blocking acquire that jumps the line when the key is free', async () => {
    const failed = await failingCases(new BargingAcquireStore(), [fairnessTests]);
    expect(failed).toContain(
      'fair queue: a holder that releases and asks again goes to the back of the line',
    );
  }, 60_000);

  it('a waiter that gave up left in the line', async () => {
    const failed = await failingCases(new LeaksAbandonedWaitersStore(), [fairnessTests]);
    expect(failed).toEqual([
      'fair queue: waiters that give up (abort, timeout) leave the line without blocking it',
    ]);
  }, 60_000);

  it('a crashed waiter left in the line', async () => {
    const failed = await failingCases(new LeaksCrashedWaitersStore(), [fairnessTests]);
    expect(failed).toEqual(['fair queue: a crashed waiter stops blocking the line within the expiry bound']);
  }, 60_000);

  it('a remaining lease that is an invented constant', async () => {
    const failed = await failingCases(new ConstantLeaseStore(), [holderTimesTests]);
    expect(failed).toEqual([
      'holder times: the remaining lease stays up while the holder renews, and runs down once it stops',
    ]);
  }, 60_000);

  it('a remaining lease that ignores renewals', async () => {
    const failed = await failingCases(new UnrenewedLeaseStore(), [holderTimesTests]);
    expect(failed).toEqual([
      'holder times: the remaining lease stays up while the holder renews, and runs down once it stops',
    ]);
  }, 60_000);

  it('an acquisition time on the wrong clock', async () => {
    const failed = await failingCases(new MonotonicStampStore(), [holderTimesTests]);
    expect(failed).toContain(
      'holder times: acquiredAt falls in the acquire call, the same through getHolder, list and watch',
    );
  }, 60_000);

  it('an acquisition time that is the time of the read', async () => {
    const failed = await failingCases(new ReadTimeStampStore(), [holderTimesTests]);
    expect(failed).toContain(
      'holder times: acquiredAt falls in the acquire call, the same through getHolder, list and watch',
    );
  }, 60_000);

  it('waiters listed out of line order, or left listed after they gave up', async () => {
    expect(await failingCases(new LifoLineStore(), [waitersTests])).toEqual([
      'waiters: listed in line order, and a waiter that aborts leaves the list',
    ]);
    expect(await failingCases(new LeaksAbandonedWaitersStore(), [waitersTests])).toEqual([
      'waiters: listed in line order, and a waiter that aborts leaves the list',
    ]);
  }, 60_000);

  it('the unmodified reference store passes the same groups', async () => {
    const failed = await failingCases(new MemoryLockStore(), [
      exclusivityTests,
      fencingTests,
      releaseTests,
      transportTests,
      fuzzTests,
      fairnessTests,
      holderTimesTests,
      waitersTests,
    ]);
    expect(failed).toEqual([]);
  }, 60_000);
});
