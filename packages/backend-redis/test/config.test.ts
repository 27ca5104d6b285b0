import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { type ConfigError, createLockProvider, parseConfig } from '@baton/core';
import { describe, expect, it } from 'vitest';
import { backend, providerOptions, RedisLockProvider, redisConfigSchema, redisFields } from '../src/index.js';

const SECRET = 'hunter2-redis-password-9f3a';

async function configError(env: Record<string, string>): Promise<ConfigError> {
  try {
    const provider = await createLockProvider({ BATON_BACKEND: 'redis', ...env });
    await provider.close();
  } catch (error) {
    expect(error).toMatchObject({ code: 'CONFIG_INVALID' });
    return error as ConfigError;
  }
  throw new Error('expected a configuration error');
}

function parse(input: Record<string, unknown>) {
  return parseConfig(redisConfigSchema, input, { backend: 'redis', fields: redisFields });
}

function fromEnv(env: Record<string, string>) {
  return parseConfig(redisConfigSchema, backend.fromEnv(env), {
    backend: 'redis',
    fields: redisFields,
    fromEnv: true,
  });
}

describe('redis config', () => {
  it('has the documented defaults', () => {
    expect(parse({})).toEqual({
      endpoint: {
        host: '127.0.0.1',
        port: 6379,
        tls: false,
        db: 0,
        username: undefined,
        password: undefined,
      },
      prefix: 'baton:',
      ttlMs: 15_000,
      lockDelayMs: 15_000,
      requestTimeoutMs: 10_000,
    });
  });

  it('reads REDIS_URL with user, password, port and database, and rediss:// for TLS', () => {
    expect(
      fromEnv({ REDIS_URL: `rediss://worker:${encodeURIComponent(`${SECRET}@/`)}@cache.internal:6380/2` }),
    ).toMatchObject({
      endpoint: {
        host: 'cache.internal',
        port: 6380,
        tls: true,
        db: 2,
        username: 'worker',
        password: `${SECRET}@/`,
      },
    });
    expect(fromEnv({ REDIS_URL: 'redis://[::1]' }).endpoint).toMatchObject({
      host: '::1',
      port: 6379,
      tls: false,
    });
  });

  it('reads REDIS_USERNAME, REDIS_PASSWORD and baton variables', () => {
    expect(
      fromEnv({
        REDIS_URL: 'rediss://cache:6380',
        REDIS_USERNAME: 'worker',
        REDIS_PASSWORD: SECRET,
        BATON_REDIS_CA_FILE: '/etc/redis/ca.pem',
        BATON_REDIS_PREFIX: 'jobs:',
        BATON_SESSION_TTL: '10s',
        BATON_LOCK_DELAY: '0',
        BATON_REDIS_TIMEOUT: '2s',
      }),
    ).toMatchObject({
      endpoint: { host: 'cache', username: 'worker', password: SECRET },
      caFile: '/etc/redis/ca.pem',
      prefix: 'jobs:',
      ttlMs: 10_000,
      lockDelayMs: 0,
      requestTimeoutMs: 2_000,
    });
  });

  it.each([
    [{ REDIS_URL: 'http://cache:6379' }, 'REDIS_URL', /unsupported scheme/],
    [
      { REDIS_URL: `redis://:${SECRET}@cache:6379/x` },
      'REDIS_URL',
      /redis:\/\/host\[:port\]\[\/db\], credentials as user:password@/,
    ],
    [{ REDIS_URL: 'not a url' }, 'REDIS_URL', /expected a URL/],
    [{ BATON_SESSION_TTL: '50ms' }, 'BATON_SESSION_TTL', /from 100ms to 24h/],
    [{ BATON_LOCK_DELAY: '2h' }, 'BATON_LOCK_DELAY', /to 1h/],
    [{ BATON_REDIS_PREFIX: 'jobs*' }, 'BATON_REDIS_PREFIX', /without NUL, \*/],
    [{ BATON_REDIS_CA_FILE: '/ca.pem' }, 'BATON_REDIS_CA_FILE', /rediss:\/\/ URL in REDIS_URL/],
    [{ REDIS_URL: `redis://:${SECRET}@cache`, REDIS_PASSWORD: SECRET }, 'REDIS_PASSWORD', /given twice/],
    [{ REDIS_URL: 'redis://a@cache', REDIS_USERNAME: 'b' }, 'REDIS_USERNAME', /given twice/],
  ])('names the field at fault: %j', async (env, field, message) => {
    const error = await configError(env);
    expect(error.field).toBe(field);
    expect(error.message).toMatch(message);
    expect(error.message).not.toContain(SECRET);
    expect(inspect(error, { depth: 10 })).not.toContain(SECRET);
  });

  it('names the CA file it cannot read', async () => {
    const error = await configError({
      REDIS_URL: 'rediss://cache:6380',
      BATON_REDIS_CA_FILE: '/nonexistent/ca.pem',
    });
    expect(error.field).toBe('BATON_REDIS_CA_FILE');
    expect(error.message).toMatch(/cannot read "\/nonexistent\/ca.pem" \(ENOENT\)/);
  });

  it('reads the CA file into the provider options', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'baton-redis-config-'));
    await writeFile(join(dir, 'ca.pem'), 'CA');
    const options = await providerOptions(parse({ url: 'rediss://cache:6380', caFile: join(dir, 'ca.pem') }));
    expect(options.ca?.toString()).toBe('CA');
  });

  it('is what createLockProvider builds for BATON_BACKEND=redis, and keeps credentials out of JSON', async () => {
    const provider = await createLockProvider({
      BATON_BACKEND: 'redis',
      REDIS_URL: `redis://worker:${SECRET}@127.0.0.1:1`,
    });
    try {
      expect(provider).toBeInstanceOf(RedisLockProvider);
      expect(provider.backend).toBe('redis');
      expect(JSON.stringify(provider)).not.toContain(SECRET);
      expect(inspect(provider, { depth: 10 })).not.toContain(SECRET);
    } finally {
      await provider.close();
    }
  });

  it('is what createLockProvider builds from a config object with backend redis', async () => {
    const provider = await createLockProvider({
      backend: 'redis',
      url: 'redis://127.0.0.1:1',
      lockDelayMs: '0',
    });
    await provider.close();
    expect(provider.backend).toBe('redis');
  });
});
