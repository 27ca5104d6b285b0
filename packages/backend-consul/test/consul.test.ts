import { inspect } from 'node:util';
import type { LockHolder } from '@baton/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConsulSession } from '../src/index.js';
import {
  type ConsulEnv,
  REAL_AGENT,
  rawDelete,
  rawEntry,
  startConsulEnv,
  TEST_TTL_MS,
  testProvider,
} from './harness.js';
import { abortedWithin, delay, rejectionOf, until } from './util.js';

/** How long Consul may take to invalidate an abandoned session: 2×TTL, plus slack. */
const EXPIRY_MS = TEST_TTL_MS * 2 + (REAL_AGENT ? 5_000 : 1_500);
const slow = { timeout: EXPIRY_MS * 3 + 10_000 };
/** The times every holder carries (their values are checked in holder-times.test.ts). */
const times = {
  acquiredAt: expect.any(Number),
  acquiredAtSource: 'holder',
  leaseRemainingAtMostMs: expect.any(Number),
};

// Consul-specific semantics, against the test server or (CONSUL_HTTP_ADDR) a real agent.
describe('consul semantics', () => {
  let env: ConsulEnv;
  beforeAll(async () => {
    env = await startConsulEnv();
  });
  afterAll(async () => {
    await env?.close();
  });

  it(
    'behavior=delete (default): a dying session deletes its keys, and the next holder’s fence is still larger',
    slow,
    async () => {
      const provider = testProvider(env);
      try {
        const [a, b] = [await provider.openSession(), await provider.openSession()];
        const first = await a.tryAcquire('delete/k', { value: 'a' });
        (a as ConsulSession).abandon();
        const consulKey = `${provider.prefix}delete/k`;
        await until(
          async () => (await rawEntry(env, consulKey)) === undefined,
          EXPIRY_MS,
          'the key to be deleted',
        );
        const second = await b.tryAcquire('delete/k');
        expect(second).not.toBeNull();
        expect(second!.fence).toBeGreaterThan(first!.fence);
        expect((await rawEntry(env, consulKey))?.LockIndex).toBe(1); // LockIndex restarted: not a fence
      } finally {
        await provider.close();
      }
    },
  );

  it('behavior=release: a dying session leaves the key, unheld, with its value', slow, async () => {
    const provider = testProvider(env, { behavior: 'release' });
    try {
      const a = await provider.openSession();
      await a.tryAcquire('release-behavior/k', { value: 'kept' });
      (a as ConsulSession).abandon();
      const consulKey = `${provider.prefix}release-behavior/k`;
      await until(
        async () => !(await rawEntry(env, consulKey))?.Session,
        EXPIRY_MS,
        'the key to be released',
      );
      expect((await rawEntry(env, consulKey))?.Value).toBe('kept');
      expect(await provider.getHolder('release-behavior/k')).toBeNull();
    } finally {
      await provider.close();
    }
  });

  it(
    'lock-delay (Consul’s own) blocks everyone after a crash, but not after a clean release',
    slow,
    async () => {
      const lockDelayMs = REAL_AGENT ? 3_000 : 600;
      const provider = testProvider(env, { lockDelayMs });
      const elsewhere = testProvider(env, { prefix: provider.prefix });
      try {
        const [a, b] = [await provider.openSession(), await elsewhere.openSession()];
        expect(await a.tryAcquire('delay/crash')).not.toBeNull();
        (a as ConsulSession).abandon();
        await until(
          async () => (await provider.getHolder('delay/crash')) === null,
          EXPIRY_MS,
          'invalidation',
        );
        const freedAt = performance.now();
        // Nobody holds it, yet nobody (not even another process) may take it: null, not an error.
        expect(await b.tryAcquire('delay/crash')).toBeNull();
        await until(
          async () => (await b.tryAcquire('delay/crash')) !== null,
          lockDelayMs * 3 + 2_000,
          'takeover',
        );
        expect(performance.now() - freedAt).toBeGreaterThanOrEqual(lockDelayMs - 100);

        const c = await provider.openSession();
        const clean = await c.tryAcquire('delay/clean');
        expect(await clean!.release()).toBe(true);
        expect(await b.tryAcquire('delay/clean')).not.toBeNull();
      } finally {
        await provider.close();
        await elsewhere.close();
      }
    },
  );

  it('lockAtLeastFor: destroy keeps the key until the minimum, then releases it cleanly (no lock-delay)', async () => {
    const provider = testProvider(env, { lockDelayMs: 10_000 });
    try {
      const [a, b] = [await provider.openSession(), await provider.openSession()];
      const holdMs = 600;
      const lease = await a.tryAcquire('at-least/k', { lockAtLeastForMs: holdMs });
      const acquiredAt = performance.now();
      expect(await lease!.release()).toBe(true);
      expect(await a.tryAcquire('at-least/k')).toBeNull(); // not even its own session may retake it
      expect(await b.tryAcquire('at-least/k')).toBeNull();
      await a.destroy();
      expect(performance.now() - acquiredAt).toBeGreaterThanOrEqual(holdMs - 20);
      // Destroying a session that still held the key would have started a 10 s lock-delay.
      expect(await b.tryAcquire('at-least/k')).not.toBeNull();
    } finally {
      await provider.close();
    }
  });

  it('concurrent tryAcquire of one key in one session yields exactly one lease', async () => {
    const provider = testProvider(env);
    try {
      const a = await provider.openSession();
      const results = await Promise.all(Array.from({ length: 8 }, () => a.tryAcquire('same-session/k')));
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(a.leases()).toHaveLength(1);
    } finally {
      await provider.close();
    }
  });

  it('forceRelease deletes a held key; a monitored holder learns at once; the next fence is larger', async () => {
    const provider = testProvider(env, { monitorAfterMs: 0 });
    try {
      const [a, b] = [await provider.openSession(), await provider.openSession()];
      expect(await provider.forceRelease('force/k')).toBe(false);
      const lease = await a.tryAcquire('force/k');
      await delay(100);
      expect(await provider.forceRelease('force/k')).toBe(true);
      expect(await abortedWithin(lease!.signal, 2_000, 'lease signal')).toMatchObject({ code: 'LEASE_LOST' });
      const next = await b.tryAcquire('force/k');
      expect(next!.fence).toBeGreaterThan(lease!.fence);
      expect(await lease!.release()).toBe(false);
      expect((await provider.getHolder('force/k'))?.sessionId).toBe(b.id);
    } finally {
      await provider.close();
    }
  });

  it('an unmonitored holder whose key was force-released and re-taken gets release() === false', async () => {
    const provider = testProvider(env, { monitorAfterMs: 60_000 });
    try {
      const [a, b] = [await provider.openSession(), await provider.openSession()];
      const stale = await a.tryAcquire('force/unmonitored', { value: 'a' });
      expect(await provider.forceRelease('force/unmonitored')).toBe(true);
      expect(stale!.signal.aborted).toBe(false); // nobody told it: no monitor yet
      const fresh = await b.tryAcquire('force/unmonitored', { value: 'b' });
      expect(await stale!.release()).toBe(false);
      expect(await provider.getHolder('force/unmonitored')).toEqual({
        key: 'force/unmonitored',
        sessionId: b.id,
        fence: fresh!.fence,
        value: 'b',
        ...times,
      });
    } finally {
      await provider.close();
    }
  });

  it('publish after the key was deleted is LEASE_LOST and does not re-create the key', async () => {
    const provider = testProvider(env, { monitorAfterMs: 60_000 });
    try {
      const a = await provider.openSession();
      const lease = await a.tryAcquire('publish/deleted', { value: 'v1' });
      const consulKey = `${provider.prefix}publish/deleted`;
      await rawDelete(env, consulKey);
      expect(await rejectionOf(lease!.publish('v2'))).toMatchObject({ code: 'LEASE_LOST' });
      expect(lease!.signal.reason).toMatchObject({ code: 'LEASE_LOST' });
      expect(await rawEntry(env, consulKey)).toBeUndefined();
    } finally {
      await provider.close();
    }
  });

  it('publish stores the plain value (readable by any Consul client) and the fence in Flags', async () => {
    const provider = testProvider(env);
    try {
      const a = await provider.openSession();
      const lease = await a.tryAcquire('publish/plain', { value: 'v1' });
      await lease!.publish('{"leader":"worker-2"}');
      const entry = await rawEntry(env, `${provider.prefix}publish/plain`);
      expect(entry?.Value).toBe('{"leader":"worker-2"}');
      expect(entry?.Flags).toBe(lease!.fence);
      expect(entry!.ModifyIndex).toBeGreaterThan(lease!.fence);
      expect(await provider.list('publish/')).toEqual([
        {
          key: 'publish/plain',
          sessionId: a.id,
          fence: lease!.fence,
          value: '{"leader":"worker-2"}',
          ...times,
        },
      ]);
    } finally {
      await provider.close();
    }
  });

  it('keys: arbitrary task ids round-trip through Consul (getHolder, list, watch)', async () => {
    const provider = testProvider(env);
    const ids = [
      'task/42',
      'täsk 42',
      'a/../b',
      '..',
      '.hidden/./x',
      '/leading/slash',
      'emoji 😀 id',
      'comma,percent%20plus+',
      'quotes "\'` and \\ back',
      'x'.repeat(300),
    ];
    try {
      const a = await provider.openSession();
      for (const id of ids) {
        const lease = await a.tryAcquire(`ids/${id}`, { value: id });
        expect(lease, id).not.toBeNull();
        const holder = await provider.getHolder(`ids/${id}`);
        expect(holder).toEqual({
          key: `ids/${id}`,
          sessionId: a.id,
          fence: lease!.fence,
          value: id,
          ...times,
        });
      }
      const listed = await provider.list('ids/');
      expect(listed.map((h) => h.key).sort()).toEqual(ids.map((id) => `ids/${id}`).sort());
      expect(await provider.list('ids/task')).toHaveLength(1);
      const controller = new AbortController();
      const watch = provider.watch('ids/täsk 42', { signal: controller.signal })[Symbol.asyncIterator]();
      expect(((await watch.next()).value as LockHolder).key).toBe('ids/täsk 42');
      controller.abort();
    } finally {
      await provider.close();
    }
  });

  it('watch coalesces nothing it must report: acquire, publish, release, acquire by another, in order', async () => {
    const provider = testProvider(env);
    try {
      const [a, b] = [await provider.openSession(), await provider.openSession()];
      const controller = new AbortController();
      const seen: Array<LockHolder | null> = [];
      const done = (async () => {
        for await (const holder of provider.watch('watch/k', { signal: controller.signal }))
          seen.push(holder);
      })();
      await until(() => seen.length === 1, 2_000, 'initial state');
      const la = await a.tryAcquire('watch/k', { value: '1' });
      await until(() => seen.length === 2, 2_000, 'acquisition');
      await la!.publish('2');
      await until(() => seen.length === 3, 2_000, 'publish');
      await la!.release();
      await until(() => seen.length === 4, 2_000, 'release');
      const lb = await b.tryAcquire('watch/k', { value: '3' });
      await until(() => seen.length === 5, 2_000, 'second acquisition');
      controller.abort();
      await done;
      expect(seen).toEqual([
        null,
        { key: 'watch/k', sessionId: a.id, fence: la!.fence, value: '1', ...times },
        { key: 'watch/k', sessionId: a.id, fence: la!.fence, value: '2', ...times },
        null,
        { key: 'watch/k', sessionId: b.id, fence: lb!.fence, value: '3', ...times },
      ]);
    } finally {
      await provider.close();
    }
  });

  it('a blocking acquire is woken by the release itself (watch), not by polling', async () => {
    const provider = testProvider(env, { ttlMs: REAL_AGENT ? 10_000 : 5_000 });
    try {
      const [a, b] = [await provider.openSession(), await provider.openSession()];
      const held = await a.tryAcquire('wake/k');
      const waiting = b.acquire('wake/k', { timeoutMs: 5_000 });
      await delay(300);
      const releasedAt = performance.now();
      await held!.release();
      const lease = await waiting;
      // Without a working watch the waiter would only retry when its TTL-long wait ran out.
      expect(performance.now() - releasedAt).toBeLessThan(1_500);
      expect(lease.fence).toBeGreaterThan(held!.fence);
    } finally {
      await provider.close();
    }
  });

  it('destroy releases everything cleanly even with a lock-delay configured', async () => {
    const provider = testProvider(env, { lockDelayMs: 10_000 });
    try {
      const [a, b] = [await provider.openSession(), await provider.openSession()];
      await Promise.all(['1', '2', '3'].map((k) => a.tryAcquire(`destroy/${k}`)));
      await a.destroy();
      expect(a.signal.reason).toMatchObject({ code: 'CLOSED' });
      for (const k of ['1', '2', '3']) expect(await b.tryAcquire(`destroy/${k}`)).not.toBeNull();
    } finally {
      await provider.close();
    }
  });

  it('close() destroys sessions, ends running watches, and refuses later calls with CLOSED', async () => {
    const provider = testProvider(env);
    const session = await provider.openSession();
    await session.tryAcquire('close/k');
    const seen: Array<LockHolder | null> = [];
    const done = (async () => {
      for await (const holder of provider.watch('close/k')) seen.push(holder);
    })();
    await until(() => seen.length === 1, 2_000, 'the watch to start');
    await provider.close();
    await done; // ends, without an error
    expect(session.signal.reason).toMatchObject({ code: 'CLOSED' });
    expect(await rejectionOf(provider.getHolder('close/k'))).toMatchObject({ code: 'CLOSED' });
    expect(await rejectionOf(provider.openSession())).toMatchObject({ code: 'CLOSED' });
    await provider.close(); // idempotent
  });

  it('never exposes the token: not in inspect output, JSON, or error messages', async () => {
    const token = 'secret-0b7e-4c1d-token';
    const provider = testProvider(env, { token, address: 'http://127.0.0.1:1', requestTimeoutMs: 500 });
    try {
      expect(inspect(provider, { depth: 20, showHidden: true })).not.toContain(token);
      expect(JSON.stringify(provider)).not.toContain(token);
      const error = await rejectionOf(provider.openSession());
      expect(inspect(error, { depth: 20 })).not.toContain(token);
    } finally {
      await provider.close();
    }
  });

  it.skipIf(REAL_AGENT)('never exposes the token through the HTTP error kept as cause (a 403)', async () => {
    const secured = await startConsulEnv({ aclTokens: ['root-token'] });
    const token = 'secret-but-wrong-token';
    const provider = testProvider(secured, { token });
    try {
      const error = await rejectionOf(provider.openSession());
      expect(error).toMatchObject({ code: 'PERMISSION_DENIED' });
      expect((error.cause as { statusCode?: number }).statusCode).toBe(403);
      expect(inspect(error, { depth: 50, showHidden: true })).not.toContain(token);
    } finally {
      await provider.close();
      await secured.close();
    }
  });
});
