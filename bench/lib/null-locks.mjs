// A stateless stand-in lock provider for the memory benchmark. Built on core's AbstractLockSession (so the
// worker sees real Lease objects: signals, idempotent release, session bookkeeping), but the "server" keeps
// nothing per key: every tryAcquire succeeds with the next fence. It measures what the worker and the task
// source keep in memory, without a lock store growing next to them: real lock servers keep their per-key
// state elsewhere (Consul, DynamoDB), and the in-process memory backend keeps it by design (a record per key
// and the grant history), so it would mask the worker's own footprint. One process only.
//
// `grant: 'all'` (default) grants every key; `grant: 'none'` answers every tryAcquire with null, as if other
// workers held every task, so the worker only streams the due tasks.

import { randomUUID } from 'node:crypto';
import { importWorkspace } from './packages.mjs';

export async function createNullLockProvider({ grant = 'all' } = {}) {
  const { AbstractLockSession, systemClock } = await importWorkspace('@baton/core', [
    'AbstractLockSession',
    'systemClock',
  ]);
  let fence = 0;
  const sessions = new Set();

  class NullSession extends AbstractLockSession {
    async acquireOnce(_key, options) {
      if (grant === 'none') return null;
      fence += 1;
      return { fence, value: options.value, state: undefined };
    }
    async releaseOnce() {
      return true;
    }
    async publishOnce() {}
    async endSession() {
      sessions.delete(this);
    }
  }

  const provider = {
    backend: 'null',
    capabilities: { nativeWatch: false, minTtlMs: 1, lockDelay: false, list: false, forceRelease: false },
    clock: systemClock,
    async openSession(options = {}) {
      const session = new NullSession({
        id: randomUUID(),
        ttlMs: options.ttlMs ?? 15_000,
        clock: systemClock,
        watch: (key, watchOptions) => provider.watch(key, watchOptions),
        nativeWatch: false,
      });
      sessions.add(session);
      return session;
    },
    async getHolder() {
      return null;
    },
    async *watch() {
      yield null;
    },
    async close() {
      await Promise.allSettled([...sessions].map((s) => s.destroy()));
    },
    async [Symbol.asyncDispose]() {
      await provider.close();
    },
  };
  return provider;
}
