import {
  type LockProvider,
  type LockSession,
  type Permit,
  type PermitOptions,
  type Semaphore,
  semaphore,
} from '@baton/core';
import { describe, expect, it } from 'vitest';
import { type LockHarness, memoryHarness, type SemaphoreFactory, semaphoreSuite } from '../src/index.js';

const TTL = 300;

/** Registers the suite into a map instead of the runner, so a case can be run against a faulty semaphore. */
function casesFor(
  make: SemaphoreFactory,
  harness: () => Promise<LockHarness> = async () => memoryHarness({ ttlMs: TTL }),
) {
  const cases = new Map<string, () => Promise<void>>();
  semaphoreSuite((name, fn) => cases.set(name, fn), harness, {
    expiryBoundMs: TTL,
    lockDelayMs: TTL,
    granularityMs: 20,
    semaphore: make,
  });
  return cases;
}

function run(cases: Map<string, () => Promise<void>>, prefix: string): Promise<void> {
  const entry = [...cases.entries()].find(([name]) => name.startsWith(prefix));
  if (!entry) throw new Error(`no suite case starting with '${prefix}'`);
  return entry[1]();
}

/** A semaphore that behaves like `real` except for the methods overridden. */
function faulty(real: Semaphore, limit: number, overrides: Partial<Semaphore> = {}): Semaphore {
  return {
    provider: real.provider,
    name: real.name,
    limit,
    tryAcquire: (s, o) => real.tryAcquire(s, o),
    acquire: (s, o) => real.acquire(s, o),
    holders: (o) => real.holders(o),
    ...overrides,
  };
}

const correct = (p: LockProvider, n: string, limit: number) => semaphore(p, n, { limit });

/** Uses one slot more than it says. */
const offByOne: SemaphoreFactory = (p, n, limit) => {
  const real = correct(p, n, limit + 1);
  const relabel = (permit: Permit | null) => (permit ? { ...permit, signal: permit.signal, limit } : null);
  return faulty(real, limit, {
    tryAcquire: async (session, options) => relabel(await real.tryAcquire(session, options)),
  });
};

/** Hands out a permit even when every slot is held. */
const unconditionalTake: SemaphoreFactory = (p, n, limit) => {
  const real = correct(p, n, limit);
  return faulty(real, limit, {
    tryAcquire: async (session: LockSession, options?: PermitOptions) => {
      const permit = await real.tryAcquire(session, options);
      if (permit) return permit;
      const key = `${n}/slot/0`;
      return {
        name: n,
        limit,
        slot: 0,
        key,
        fence: Number.MAX_SAFE_INTEGER,
        sessionId: session.id,
        value: undefined,
        signal: new AbortController().signal,
        release: async () => true,
        [Symbol.asyncDispose]: async () => undefined,
      } satisfies Permit;
    },
  });
};

/** Releases by clearing the slot whoever holds it now. */
const releaseWithoutOwnerCheck: SemaphoreFactory = (p, n, limit) => {
  const real = correct(p, n, limit);
  return faulty(real, limit, {
    tryAcquire: async (session, options) => {
      const permit = await real.tryAcquire(session, options);
      if (!permit) return null;
      return {
        ...permit,
        signal: permit.signal,
        release: async () => {
          await p.forceRelease?.(permit.key);
          await permit.release();
          return true;
        },
      };
    },
  });
};

/** Treats a holder with another limit as contention. */
const ignoresMismatch: SemaphoreFactory = (p, n, limit) => {
  const real = correct(p, n, limit);
  return faulty(real, limit, {
    tryAcquire: (session, options) =>
      real.tryAcquire(session, options).catch((error: unknown) => {
        if ((error as { code?: string }).code === 'CONFIG_INVALID') return null;
        throw error;
      }),
    acquire: (session, options) => real.acquire(session, { ...options, signal: AbortSignal.timeout(500) }),
  });
};

/** A blocking acquire that does not listen to its signal. */
const ignoresAbort: SemaphoreFactory = (p, n, limit) => {
  const real = correct(p, n, limit);
  return faulty(real, limit, {
    acquire: (session, options = {}) => {
      const { signal: _ignored, ...rest } = options;
      return real.acquire(session, rest);
    },
  });
};

/** Reports the same fence for every permit. */
const constantFence: SemaphoreFactory = (p, n, limit) => {
  const real = correct(p, n, limit);
  return faulty(real, limit, {
    tryAcquire: async (session, options) => {
      const permit = await real.tryAcquire(session, options);
      return permit ? { ...permit, signal: permit.signal, fence: 1 } : null;
    },
  });
};

/**
 * Waits for a slot to *change* before trying again: a waiter whose first refusal comes from a lock-delay
 * (the slot already looks free) waits for a change that never comes.
 */
const waitsForChangeOnly: SemaphoreFactory = (p, n, limit) => {
  const real = correct(p, n, limit);
  return faulty(real, limit, {
    acquire: async (session, options = {}) => {
      for (;;) {
        options.signal?.throwIfAborted();
        const permit = await real.tryAcquire(session);
        if (permit) return permit;
        const changed = new AbortController();
        const stop = options.signal ? AbortSignal.any([options.signal, changed.signal]) : changed.signal;
        await Promise.race(
          Array.from({ length: limit }, async (_, slot) => {
            let first = true;
            for await (const _holder of p.watch(`${n}/slot/${slot}`, { signal: stop })) {
              if (!first) break;
              first = false;
            }
          }),
        );
        changed.abort();
      }
    },
  });
};

/** Waiters poll the slots instead of lining up: whoever looks first after a release wins. */
const noLine: SemaphoreFactory = (p, n, limit) => {
  const real = correct(p, n, limit);
  return faulty(real, limit, {
    acquire: async (session, options) => {
      while (!session.signal.aborted) {
        const permit = await real.tryAcquire(session, options);
        if (permit) return permit;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      throw session.signal.reason;
    },
  });
};

describe('the semaphore suite catches planted faults', () => {
  it('the correct semaphore passes the cases the faults are checked against', async () => {
    const cases = casesFor(correct);
    for (const prefix of [
      'semaphore: grants up to limit',
      'semaphore: releasing a lost permit',
      'semaphore: a different limit',
      'semaphore: an aborted',
      "semaphore: a permit's fence",
      'semaphore: a waiter refused by a lock-delay',
      'semaphore: waiters get permits in the order',
    ]) {
      await run(cases, prefix);
    }
  }, 30_000);

  it('an off-by-one limit is caught', async () => {
    await expect(run(casesFor(offByOne), 'semaphore: grants up to limit')).rejects.toThrow(
      /full semaphore|within the limit/,
    );
  });

  it('an off-by-one limit is caught under contention', async () => {
    await expect(run(casesFor(offByOne), 'semaphore: never more than limit')).rejects.toThrow(
      /were valid|permits valid at once/,
    );
  });

  it('a permit handed out while every slot is held is caught', async () => {
    await expect(run(casesFor(unconditionalTake), 'semaphore: grants up to limit')).rejects.toThrow(
      /full semaphore/,
    );
  });

  it('a release without an owner check is caught freeing the new holder', async () => {
    await expect(
      run(casesFor(releaseWithoutOwnerCheck), 'semaphore: releasing a lost permit'),
    ).rejects.toThrow(/still valid|still holds|not freed|claimed to release/);
  });

  it('a semaphore that ignores another limit is caught', async () => {
    await expect(run(casesFor(ignoresMismatch), 'semaphore: a different limit')).rejects.toThrow(
      /CONFIG_INVALID/,
    );
  });

  it('a waiter that ignores its abort signal is caught', async () => {
    await expect(run(casesFor(ignoresAbort), 'semaphore: an aborted')).rejects.toThrow(/kept waiting/);
  }, 30_000);

  it('a fence that does not rise is caught', async () => {
    await expect(run(casesFor(constantFence), "semaphore: a permit's fence")).rejects.toThrow(/fence/);
  });

  it('a waiter that waits for a change after a lock-delay refusal is caught', async () => {
    await expect(
      run(casesFor(waitsForChangeOnly), 'semaphore: a waiter refused by a lock-delay'),
    ).rejects.toThrow(/did not get the permit/);
  }, 30_000);

  it('waiters that do not line up are caught', async () => {
    await expect(run(casesFor(noLine), 'semaphore: waiters get permits in the order')).rejects.toThrow(
      /head the line/,
    );
  }, 30_000);
});
