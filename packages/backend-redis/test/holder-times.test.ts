import { describe, expect, it } from 'vitest';
import { RedisKeys } from '../src/index.js';
import { haveRedis, makeProvider, redisServer, uniquePrefix } from './harness.js';

const redis = redisServer();

describe.skipIf(!haveRedis)('redis: holder times', () => {
  it('the grant time is the server clock (TIME) stored with the grant; the lease left is exp − TIME', async () => {
    const prefix = uniquePrefix('times');
    const provider = makeProvider(redis.server().url, { prefix, ttlMs: 2_000, lockDelayMs: 0 });
    try {
      const session = await provider.openSession();
      const lease = await session.tryAcquire('job');
      const raw = redis.raw();
      const [at, exp] = await raw.hmget(new RedisKeys(prefix).lock('job'), 'at', 'exp');
      const [seconds, micros] = await raw.time();
      const now = Number(seconds) * 1_000 + Math.floor(Number(micros) / 1_000);
      const holder = await provider.getHolder('job');
      expect(holder).toMatchObject({
        fence: lease!.fence,
        acquiredAt: Number(at),
        acquiredAtSource: 'server',
      });
      // Read after TIME above: at most what was left then, and not much less.
      expect(holder!.leaseRemainingMs).toBeLessThanOrEqual(Number(exp) - now);
      expect(holder!.leaseRemainingMs).toBeGreaterThan(Number(exp) - now - 500);
    } finally {
      await provider.close();
    }
  });

  it('a lock written before the grant time was stored is reported without acquiredAt', async () => {
    const prefix = uniquePrefix('times-old');
    const provider = makeProvider(redis.server().url, { prefix, ttlMs: 2_000, lockDelayMs: 0 });
    try {
      const session = await provider.openSession();
      const lease = await session.tryAcquire('job');
      // As the previous version's acquire script left it: no `at` field.
      await redis.raw().hdel(new RedisKeys(prefix).lock('job'), 'at');
      const holder = await provider.getHolder('job');
      expect(holder).toMatchObject({ sessionId: session.id, fence: lease!.fence });
      expect(holder).not.toHaveProperty('acquiredAt');
      expect(holder).not.toHaveProperty('acquiredAtSource');
      expect(holder!.leaseRemainingMs).toBeGreaterThan(0);
      expect(await provider.list()).toEqual([
        holder ? { ...holder, leaseRemainingMs: expect.any(Number) } : null,
      ]);
    } finally {
      await provider.close();
    }
  });
});
