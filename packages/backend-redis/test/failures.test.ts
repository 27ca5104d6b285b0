import { startFaultProxy } from '@baton/test-servers/fault-proxy';
import { type RedisServer, startRedis } from '@baton/test-servers/redis';
import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { RedisKeys } from '../src/index.js';
import { haveRedis, makeProvider, redisServer, uniquePrefix } from './harness.js';

async function rejection(promise: Promise<unknown>): Promise<{ code?: string; message: string }> {
  return promise.then(
    (value) => {
      throw new Error(`expected a rejection, got ${String(value)}`);
    },
    (error: { code?: string; message: string }) => error,
  );
}

async function eventually<T>(probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function keysUnder(raw: Redis, prefix: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await raw.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1_000);
    cursor = next;
    found.push(...batch);
  } while (cursor !== '0');
  return found.sort();
}

describe.skipIf(!haveRedis)('redis failures: restarts', () => {
  let server: RedisServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('kill -9 and restart EMPTY: held sessions are lost, fences still rise, keys are grantable again', async () => {
    server = await startRedis();
    const settings = {
      prefix: uniquePrefix('empty'),
      ttlMs: 1_000,
      lockDelayMs: 1_000,
      requestTimeoutMs: 1_000,
    };
    const provider = makeProvider(server.url, settings);
    try {
      const first = await provider.openSession();
      const fences: number[] = [];
      for (const key of ['a', 'b']) {
        const lease = await first.tryAcquire(key);
        expect(lease).not.toBeNull();
        fences.push(lease?.fence ?? 0);
      }
      await server.restart({ empty: true });
      // The session key went with the data: the next renewal (or acquisition) says SESSION_LOST.
      await eventually(async () => (first.signal.aborted ? true : undefined), 5_000);
      expect(first.signal.reason).toMatchObject({ code: 'SESSION_LOST' });
      expect(first.leases()).toHaveLength(0);
      const second = await eventually(() => provider.openSession(), 5_000);
      // The counter is gone too, and the scripts with it (EVALSHA answers NOSCRIPT: loaded again).
      for (const key of ['a', 'b', 'c']) {
        const lease = await second.tryAcquire(key);
        expect(lease, `${key} is grantable at once after an empty restart`).not.toBeNull();
        expect(lease?.fence).toBeGreaterThan(Math.max(...fences));
        fences.push(lease?.fence ?? 0);
      }
      await second.destroy();
    } finally {
      await provider.close();
    }
  });

  it('kill -9 and restart with the data (append-only file): leases survive, fences rise', async () => {
    server = await startRedis({ persistence: 'aof' });
    const settings = { prefix: uniquePrefix('aof'), ttlMs: 5_000, lockDelayMs: 0, requestTimeoutMs: 1_000 };
    const provider = makeProvider(server.url, settings);
    try {
      const session = await provider.openSession();
      const held = await session.tryAcquire('held');
      expect(held).not.toBeNull();
      await server.restart();
      const other = await eventually(() => provider.openSession(), 5_000);
      expect(await other.tryAcquire('held')).toBeNull();
      const next = await other.tryAcquire('next');
      expect(next?.fence).toBeGreaterThan(held?.fence ?? Number.POSITIVE_INFINITY);
      expect(await eventually(() => provider.getHolder('held'), 5_000)).toMatchObject({
        sessionId: session.id,
        fence: held?.fence,
      });
      expect(held?.signal.aborted).toBe(false);
      expect(await held?.release()).toBe(true);
      await Promise.all([session.destroy(), other.destroy()]);
    } finally {
      await provider.close();
    }
  });
});

describe.skipIf(!haveRedis)('redis failures', () => {
  const redis = redisServer();

  it('a read-only replica refuses every operation, reads included: UNAVAILABLE naming the primary', async () => {
    const replica = await startRedis({ args: ['--replicaof', '127.0.0.1', String(redis.server().port)] });
    const provider = makeProvider(replica.url, { prefix: uniquePrefix('replica'), requestTimeoutMs: 2_000 });
    try {
      const open = await rejection(provider.openSession());
      expect(open.code).toBe('UNAVAILABLE');
      expect(open.message).toMatch(/read-only replica: point REDIS_URL at the primary/);
      const read = await rejection(provider.getHolder('job'));
      expect(read.code).toBe('UNAVAILABLE');
      expect(read.message).toMatch(/read-only replica/);
    } finally {
      await provider.close();
      await replica.close();
    }
  });

  it('fences never go back when the counter is lost or restored to an older value', async () => {
    const prefix = uniquePrefix('counter');
    const keys = new RedisKeys(prefix);
    const provider = makeProvider(redis.server().url, { prefix, lockDelayMs: 0 });
    try {
      const session = await provider.openSession();
      let last = 0;
      const step = async (key: string) => {
        const lease = await session.tryAcquire(key);
        expect(lease?.fence).toBeGreaterThan(last);
        last = lease?.fence ?? 0;
        await lease?.release();
      };
      await step('a');
      await step('a');
      await redis.raw().del(keys.fence);
      await step('a');
      await redis.raw().set(keys.fence, '5');
      await step('b');
      await step('a');
      await session.destroy();
    } finally {
      await provider.close();
    }
  });

  it('after N tasks only bounded bookkeeping is left: the fence counter and live sessions', async () => {
    const prefix = uniquePrefix('leftover');
    const keys = new RedisKeys(prefix);
    const provider = makeProvider(redis.server().url, { prefix, ttlMs: 500, lockDelayMs: 300 });
    try {
      const worker = await provider.openSession();
      for (let i = 0; i < 150; i++) {
        const lease = await worker.tryAcquire(`task/${i}`, i % 10 === 0 ? { lockAtLeastForMs: 200 } : {});
        expect(lease).not.toBeNull();
        await lease?.release();
      }
      const crashed = await provider.openSession();
      for (let i = 150; i < 200; i++) expect(await crashed.tryAcquire(`task/${i}`)).not.toBeNull();
      crashed.abandon();
      // Released keys go at once (or after lockAtLeastFor); a crashed holder's after its TTL and lock-delay.
      const left = await eventually(async () => {
        const now = await keysUnder(redis.raw(), prefix);
        return now.length <= 2 ? now : undefined;
      }, 5_000);
      expect(left).toEqual([keys.fence, keys.session(worker.id)].sort());
      await worker.destroy();
      expect(await keysUnder(redis.raw(), prefix)).toEqual([keys.fence]);
    } finally {
      await provider.close();
    }
  });

  it('an acquisition whose answer was lost does not keep the key held: released at the next renewal', async () => {
    const proxy = await startFaultProxy(`http://127.0.0.1:${redis.server().port}`);
    const prefix = uniquePrefix('lost-answer');
    const a = makeProvider(proxy.url.replace('http:', 'redis:'), {
      prefix,
      ttlMs: 5_000,
      lockDelayMs: 5_000,
      requestTimeoutMs: 300,
    });
    const observer = makeProvider(redis.server().url, { prefix });
    try {
      const session = await a.openSession();
      // The server knows the script now, so the dropped EVALSHA below is applied, not answered NOSCRIPT.
      await (await session.tryAcquire('warm-up'))?.release();
      proxy.setMode('drop-responses');
      const error = await rejection(session.tryAcquire('job'));
      expect(['TIMEOUT', 'UNAVAILABLE']).toContain(error.code);
      expect(await observer.getHolder('job')).toMatchObject({ sessionId: session.id });
      // A reset connection, not a reply lost on a live one, is what a real network does.
      proxy.setMode('reset');
      await new Promise((resolve) => setTimeout(resolve, 50));
      proxy.setMode('pass');
      // Released long before the key's own TTL (5 s + 5 s lock-delay) would have freed it.
      await eventually(async () => ((await observer.getHolder('job')) === null ? true : undefined), 4_000);
      expect(await redis.raw().exists(new RedisKeys(prefix).lock('job'))).toBe(0);
      const lease = await session.tryAcquire('job');
      expect(lease).not.toBeNull();
      expect(session.signal.aborted).toBe(false);
    } finally {
      await Promise.all([a.close(), observer.close()]);
      await proxy.close();
    }
  });

  it('a release whose answer was lost is settled in the background, and never frees a newer holder', async () => {
    const proxy = await startFaultProxy(`http://127.0.0.1:${redis.server().port}`);
    const prefix = uniquePrefix('lost-release');
    const keys = new RedisKeys(prefix);
    const settings = { prefix, ttlMs: 2_000, lockDelayMs: 10_000, requestTimeoutMs: 300 };
    const a = makeProvider(proxy.url.replace('http:', 'redis:'), settings);
    const b = makeProvider(redis.server().url, settings);
    try {
      const [sa, sb] = [await a.openSession(), await b.openSession()];
      // The server knows the scripts now: a dropped EVALSHA below is applied, not answered NOSCRIPT.
      await (await sa.tryAcquire('warm-up'))?.release();
      // Applied, answer lost: another session takes the key before the background settle runs.
      const gone = await sa.tryAcquire('gone');
      proxy.setMode('drop-responses');
      expect(['TIMEOUT', 'UNAVAILABLE']).toContain(
        (await rejection(gone?.release() ?? Promise.resolve())).code,
      );
      const taken = await sb.tryAcquire('gone');
      expect(taken).not.toBeNull();
      // Not applied: the release's request never reaches Redis. The key must not wait for TTL + lock-delay.
      proxy.setMode('reset');
      await new Promise((resolve) => setTimeout(resolve, 50));
      proxy.setMode('pass');
      const kept = await eventually(async () => (await sa.tryAcquire('kept')) ?? undefined, 3_000);
      proxy.setMode('drop-requests');
      expect(['TIMEOUT', 'UNAVAILABLE']).toContain((await rejection(kept.release())).code);
      proxy.setMode('reset');
      await new Promise((resolve) => setTimeout(resolve, 50));
      proxy.setMode('pass');
      // Without the settle, the key would stay until TTL + lock-delay (12 s) after its grant. The settle of
      // 'gone' was sent before, on the same connection: it has run too, and must have left B's key alone.
      await eventually(
        async () => ((await redis.raw().exists(keys.lock('kept'))) === 0 ? true : undefined),
        6_000,
      );
      expect(await b.getHolder('gone')).toMatchObject({ sessionId: sb.id, fence: taken?.fence });
      expect(taken?.signal.aborted).toBe(false);
      expect(sa.signal.aborted).toBe(false);
    } finally {
      await Promise.all([a.close(), b.close()]);
      await proxy.close();
    }
  });

  it('a renewal finds a lease taken over (force-released, then taken) lost, and leaves the new holder alone', async () => {
    const prefix = uniquePrefix('takeover');
    const provider = makeProvider(redis.server().url, { prefix, ttlMs: 400, lockDelayMs: 0 });
    try {
      const [a, b] = [await provider.openSession(), await provider.openSession()];
      const old = await a.tryAcquire('job');
      expect(await provider.forceRelease('job')).toBe(true);
      const taken = await b.tryAcquire('job');
      expect(taken).not.toBeNull();
      await eventually(async () => (old?.signal.aborted ? true : undefined), 3_000);
      expect(old?.signal.reason).toMatchObject({ code: 'LEASE_LOST' });
      expect(a.signal.aborted).toBe(false);
      expect(await old?.release()).toBe(false);
      expect(await provider.getHolder('job')).toMatchObject({ sessionId: b.id, fence: taken?.fence });
      await Promise.all([a.destroy(), b.destroy()]);
    } finally {
      await provider.close();
    }
  });

  it('a late release or renewal never touches a newer holder of the key', async () => {
    const prefix = uniquePrefix('newer');
    const settings = { prefix, ttlMs: 400, lockDelayMs: 0 };
    const provider = makeProvider(redis.server().url, settings);
    try {
      const [a, b] = [await provider.openSession(), await provider.openSession()];
      const old = await a.tryAcquire('job');
      expect(old).not.toBeNull();
      a.abandon();
      const taken = await eventually(async () => (await b.tryAcquire('job')) ?? undefined, 3_000);
      expect(await old?.release()).toBe(false);
      expect(await provider.getHolder('job')).toMatchObject({ sessionId: b.id, fence: taken.fence });
      expect(taken.signal.aborted).toBe(false);
      await b.destroy();
    } finally {
      await provider.close();
    }
  });
});
