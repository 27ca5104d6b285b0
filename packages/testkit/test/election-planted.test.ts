import {
  type LineCondition,
  type LockHolder,
  type LockProvider,
  MemoryLockStore,
  SessionLostError,
  type StoredWaiter,
  type WatchOptions,
} from '@baton/core';
import { describe, expect, it } from 'vitest';
import { type LockHarness, leaderElectionSuite, memoryHarness } from '../src/index.js';

const TTL = 300;
const options = { expiryBoundMs: TTL, granularityMs: 20 };

/** Registers the suite into a map instead of the runner, so a case can be run against a broken backend. */
function casesFor(factory: () => Promise<LockHarness>): Map<string, () => Promise<void>> {
  const cases = new Map<string, () => Promise<void>>();
  leaderElectionSuite((name, fn) => cases.set(name, fn), factory, options);
  return cases;
}

function run(cases: Map<string, () => Promise<void>>, prefix: string): Promise<void> {
  const entry = [...cases.entries()].find(([name]) => name.startsWith(prefix));
  if (!entry) throw new Error(`no suite case starting with '${prefix}'`);
  return entry[1]();
}

/** Grants a held key anyway, displacing the holder: two leaders at once. */
class GrantsWhileHeld extends MemoryLockStore {
  override acquire(...args: Parameters<MemoryLockStore['acquire']>): ReturnType<MemoryLockStore['acquire']> {
    this.forceRelease(args[1]);
    return super.acquire(...args);
  }
}

/** Refuses acquisitions for most of a TTL after a release: a handover that is not prompt. */
class SlowRelease extends MemoryLockStore {
  readonly #releasedAt = new Map<string, number>();
  override release(sessionId: string, key: string, fence: number): boolean {
    const released = super.release(sessionId, key, fence);
    if (released) this.#releasedAt.set(key, this.clock.monotonicNow());
    return released;
  }
  override acquire(...args: Parameters<MemoryLockStore['acquire']>): ReturnType<MemoryLockStore['acquire']> {
    const at = this.#releasedAt.get(args[1]);
    if (at !== undefined && this.clock.monotonicNow() - at < TTL * 0.9) return null;
    return super.acquire(...args);
  }
}

/** Serves the line last-come-first-served: a leader that campaigns again is next again. */
class LifoLine extends MemoryLockStore {
  override waiters(key: string): readonly StoredWaiter[] {
    return [...super.waiters(key)].reverse();
  }
}

/** A blocking acquire that takes a free key ahead of the waiters: a resigning leader wins again at once. */
class BargingAcquire extends MemoryLockStore {
  override acquire(
    sessionId: string,
    key: string,
    options: Parameters<MemoryLockStore['acquire']>[2],
    line: LineCondition = 'barge',
  ): ReturnType<MemoryLockStore['acquire']> {
    return super.acquire(sessionId, key, options, line === 'empty' ? 'barge' : line);
  }
}

/** Accepts renewals without extending the session: the server expires live sessions. */
class IgnoresRenewals extends MemoryLockStore {
  override renewSession(id: string): void {
    if (!this.hasSession(id)) throw new SessionLostError(`session '${id}' not found`);
  }
}

/** A watch that reports the first state and then nothing: observers never catch up. */
function stuckWatch(harness: LockHarness): LockHarness {
  const real = harness.provider;
  const provider: LockProvider = {
    backend: real.backend,
    capabilities: real.capabilities,
    clock: real.clock,
    openSession: (o) => real.openSession(o),
    getHolder: (k, o) => real.getHolder(k, o),
    async *watch(key: string, o?: WatchOptions): AsyncGenerator<LockHolder | null> {
      for await (const holder of real.watch(key, o)) {
        yield holder;
        break;
      }
      const signal = o?.signal;
      if (signal && !signal.aborted) {
        await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      }
    },
    close: () => real.close(),
    [Symbol.asyncDispose]: () => real.close(),
  };
  return { ...harness, provider };
}

/** Sessions alternate between two independent backends, as in a partitioned cluster that lost quorum. */
function splitBrain(left: LockHarness, right: LockHarness): LockHarness {
  let next = 0;
  const provider: LockProvider = {
    ...left.provider,
    backend: left.provider.backend,
    capabilities: left.provider.capabilities,
    clock: left.provider.clock,
    openSession: (o) => (next++ % 2 === 0 ? left : right).provider.openSession(o),
    getHolder: (k, o) => left.provider.getHolder(k, o),
    watch: (k, o) => left.provider.watch(k, o),
    close: async () => {
      await Promise.all([left.close(), right.close()]);
    },
    [Symbol.asyncDispose]: async () => provider.close(),
  };
  return { ...left, provider, close: () => provider.close() };
}

describe('the election suite catches planted faults', () => {
  it('a backend that grants a held lock to someone else is caught taking leadership away', async () => {
    const cases = casesFor(async () => memoryHarness({ ttlMs: TTL, store: new GrantsWhileHeld() }));
    await expect(run(cases, 'election: one leader at a time')).rejects.toThrow(
      /still believed it led|overlaps|taken away while its session was live/,
    );
  });

  it('a split-brain backend (two leaders believing at once) breaks one-leader-at-a-time', async () => {
    const cases = casesFor(async () =>
      splitBrain(memoryHarness({ ttlMs: TTL }), memoryHarness({ ttlMs: TTL })),
    );
    await expect(run(cases, 'election: one leader at a time')).rejects.toThrow(/still believed it led/);
  });

  it('a backend that frees released locks late fails the prompt-handover check', async () => {
    const cases = casesFor(async () => memoryHarness({ ttlMs: TTL, store: new SlowRelease() }));
    await expect(run(cases, 'election: handover on resign is prompt')).rejects.toThrow(/handover took/);
  });

  it('a line that is not first-come-first-served fails the turn-taking check', async () => {
    const cases = casesFor(async () => memoryHarness({ ttlMs: TTL, store: new LifoLine() }));
    await expect(run(cases, 'election: campaigners take turns')).rejects.toThrow(/did not rotate/);
  });

  it('a campaign that jumps the line fails the turn-taking check', async () => {
    const cases = casesFor(async () => memoryHarness({ ttlMs: TTL, store: new BargingAcquire() }));
    await expect(run(cases, 'election: campaigners take turns')).rejects.toThrow(/did not rotate/);
  });

  it('a backend that expires live sessions fails the keep-leading check', async () => {
    const cases = casesFor(async () => memoryHarness({ ttlMs: TTL, store: new IgnoresRenewals() }));
    await expect(run(cases, 'election: a live leader keeps leading')).rejects.toThrow(/leadership lost/);
  });

  it('a watch that stops reporting fails the observer checks', async () => {
    const cases = casesFor(async () => stuckWatch(memoryHarness({ ttlMs: TTL })));
    await expect(run(cases, 'election: observers see every term')).rejects.toThrow(/timed out/);
  }, 30_000);
});
