import { MemoryLockProvider, type MemoryLockStore, type MemorySession } from '@baton/core';
import type { LockHarness } from './types.js';

/** Options for {@link memoryHarness}. */
export interface MemoryHarnessOptions {
  ttlMs?: number;
  /** Use this store (e.g. a deliberately broken subclass in the planted-fault tests). */
  store?: MemoryLockStore;
}

/** A {@link LockHarness} for the in-memory provider: the reference every backend is measured against. */
export function memoryHarness(options: MemoryHarnessOptions = {}): LockHarness {
  const ttlMs = options.ttlMs ?? 300;
  const provider = new MemoryLockProvider({
    ttlMs,
    lockDelayMs: 0,
    ...(options.store ? { store: options.store } : {}),
  });
  const store = provider.store;
  return {
    provider,
    sessionOptions: { ttlMs, lockDelayMs: 0 },
    inspect: async (key) => {
      const entry = store.inspect(key);
      const waiters = store.waiters(key).map((w) => w.sessionId);
      if (!entry) return waiters.length > 0 ? { holder: undefined, fence: 0, waiters } : null;
      return { holder: entry.holder, fence: entry.fence, waiters };
    },
    crash: async (session) => (session as MemorySession).abandon(),
    breakTransport: async () => {
      store.failNext(Number.POSITIVE_INFINITY);
      return async () => store.clearFaults();
    },
    deleteKey: async (key) => store.deleteKey(key),
    close: () => provider.close(),
  };
}
