import { randomBytes } from 'node:crypto';
import { startFaultProxy } from '@baton/test-servers/fault-proxy';
import {
  type RedisServer,
  redisAvailable,
  type StartRedisOptions,
  startRedis,
} from '@baton/test-servers/redis';
import type { LockHarness } from '@baton/testkit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import {
  RedisKeys,
  RedisLockProvider,
  type RedisLockProviderOptions,
  type RedisSession,
  redisConfigSchema,
} from '../src/index.js';

/** True when redis-server is there; otherwise warns (or, with `CI` set, throws) once per file. */
export const haveRedis = redisAvailable('@baton/backend-redis tests');

/** A fresh key prefix per provider, so tests never see each other's keys. */
export function uniquePrefix(label: string): string {
  return `baton-test:${label}-${randomBytes(4).toString('hex')}:`;
}

/** One redis-server per test file (started in `beforeAll`, stopped in `afterAll`), and a direct client. */
export function redisServer(options: StartRedisOptions = {}): {
  server: () => RedisServer;
  raw: () => Redis;
} {
  let server: RedisServer | undefined;
  let raw: Redis | undefined;
  beforeAll(async () => {
    server = await startRedis(options);
    raw = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    raw.on('error', () => undefined);
  });
  afterAll(async () => {
    raw?.disconnect();
    await server?.close();
  });
  return {
    server: () => {
      if (!server) throw new Error('redis not started');
      return server;
    },
    raw: () => {
      if (!raw) throw new Error('redis not started');
      return raw;
    },
  };
}

/** A provider on `url` with the schema's defaults and the given settings. */
export function makeProvider(
  url: string,
  settings: Record<string, unknown>,
  extra: Partial<RedisLockProviderOptions> = {},
): RedisLockProvider {
  return new RedisLockProvider({ ...redisConfigSchema.parse({ url, ...settings }), ...extra });
}

/**
 * The conformance harness: one redis-server per test file, a provider per test behind its own TCP proxy, so
 * that `breakTransport` resets that provider's connections (and refuses new ones) while the server runs on.
 */
export function redisHarnessFactory(label: string, ttlMs: number): () => Promise<LockHarness> {
  const redis = redisServer();
  return async () => {
    const proxy = await startFaultProxy(`http://127.0.0.1:${redis.server().port}`);
    const prefix = uniquePrefix(label);
    const keys = new RedisKeys(prefix);
    const provider = makeProvider(proxy.url.replace(/^http:/, 'redis:'), {
      prefix,
      ttlMs,
      lockDelayMs: 0,
      requestTimeoutMs: 2_000,
    });
    const raw = redis.raw();
    return {
      provider,
      sessionOptions: { ttlMs, lockDelayMs: 0 },
      inspect: async (key) => {
        const [owner, fence, rel] = await raw.hmget(keys.lock(key), 'owner', 'fence', 'rel');
        if (owner === null) return null;
        return { holder: rel === null ? owner : undefined, fence: Number(fence) };
      },
      crash: async (session) => (session as RedisSession).abandon(),
      breakTransport: async () => {
        proxy.setMode('reset');
        return async () => proxy.setMode('pass');
      },
      deleteKey: async (key) => {
        await raw.del(keys.lock(key));
      },
      close: async () => {
        await provider.close();
        await proxy.close();
      },
    };
  };
}
