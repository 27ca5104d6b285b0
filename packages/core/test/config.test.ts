import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  ConfigError,
  createLockProvider,
  defineBackend,
  MemoryLockProvider,
  parseDuration,
  registerBackend,
} from '../src/index.js';

describe('createLockProvider', () => {
  it('defaults to the in-memory backend', async () => {
    const provider = await createLockProvider({});
    expect(provider.backend).toBe('memory');
    expect(provider).toBeInstanceOf(MemoryLockProvider);
    await provider.close();
  });

  it('rejects an unknown backend name, naming BATON_BACKEND and the fix', async () => {
    const error = await createLockProvider({ BATON_BACKEND: 'nope' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).field).toBe('BATON_BACKEND');
    expect((error as ConfigError).code).toBe('CONFIG_INVALID');
    expect((error as Error).message).toMatch(/unknown backend 'nope'/);
    expect((error as Error).message).toMatch(/memory/);
  });

  it('rejects a config field of the wrong type, naming the field', async () => {
    const error = await createLockProvider({ backend: 'memory', ttlMs: 'soon' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).field).toBe('ttlMs');
    expect((error as Error).message).toMatch(/ttlMs/);
    expect((error as Error).message).toMatch(/"soon"/);
  });

  it('names the environment variable when the bad value came from the environment', async () => {
    const error = await createLockProvider({ BATON_BACKEND: 'memory', BATON_SESSION_TTL: 'ten' }).catch(
      (e: unknown) => e,
    );
    expect((error as ConfigError).field).toBe('BATON_SESSION_TTL');
    expect((error as Error).message).toMatch(/BATON_SESSION_TTL/);
    expect((error as Error).message).toMatch(/Fix: set BATON_SESSION_TTL to a duration/);
  });

  it('rejects unknown fields in a config object', async () => {
    const error = await createLockProvider({ backend: 'memory', ttl: 5 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/ttl/);
  });

  it('reads durations from the environment', async () => {
    const provider = await createLockProvider({ BATON_BACKEND: 'memory', BATON_SESSION_TTL: '2s' });
    const session = await provider.openSession();
    expect(session.ttlMs).toBe(2_000);
    await provider.close();
  });

  it('uses a registered custom backend by name', async () => {
    const custom = defineBackend({
      name: 'custom-test',
      description: 'test backend',
      schema: z.object({ ttlMs: z.coerce.number().default(1_000) }),
      fromEnv: (env) => (env.CUSTOM_TTL ? { ttlMs: env.CUSTOM_TTL } : {}),
      create: (config) => new MemoryLockProvider({ ttlMs: config.ttlMs }),
    });
    registerBackend(custom);
    const provider = await createLockProvider({ BATON_BACKEND: 'custom-test', CUSTOM_TTL: '1234' });
    expect((await provider.openSession()).ttlMs).toBe(1_234);
    await provider.close();
  });

  it('refuses to register two different backends under one name', () => {
    const make = () =>
      defineBackend({
        name: 'dup-test',
        description: 'x',
        schema: z.object({}),
        fromEnv: () => ({}),
        create: () => new MemoryLockProvider(),
      });
    registerBackend(make());
    expect(() => registerBackend(make())).toThrow(ConfigError);
  });

  it('reports a missing custom module clearly', async () => {
    const error = await createLockProvider({
      BATON_BACKEND: 'redis-x',
      BATON_BACKEND_MODULE: 'baton-backend-that-does-not-exist',
    }).catch((e: unknown) => e);
    expect((error as ConfigError).field).toBe('BATON_BACKEND_MODULE');
    expect((error as Error).message).toMatch(/npm install baton-backend-that-does-not-exist/);
  });
});

describe('parseDuration', () => {
  it.each([
    [1500, 1500],
    ['1500', 1500],
    ['15s', 15_000],
    ['500ms', 500],
    ['1m30s', 90_000],
    ['1.5h', 5_400_000],
  ])('%s → %s ms', (input, expected) => {
    expect(parseDuration(input)).toBe(expected);
  });

  it.each([['soon'], ['15 s'], ['-5'], [-5], ['1x'], [''], [null]])('rejects %s', (input) => {
    expect(parseDuration(input)).toBeUndefined();
  });
});
