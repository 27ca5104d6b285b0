import { type ConfigError, createLockProvider, parseConfig } from '@baton/core';
import { describe, expect, it } from 'vitest';
import { backend, PgLockProvider, pgLockConfigSchema, pgLockFields } from '../src/index.js';
import { lockDatabase, makeProvider } from './harness.js';

const SECRET = 'Sentinel-pg-password-7c1e';
const database = lockDatabase();

async function failure(env: Record<string, string>, use = true): Promise<Error & { code?: string }> {
  let provider: Awaited<ReturnType<typeof createLockProvider>> | undefined;
  try {
    provider = await createLockProvider({ BATON_BACKEND: 'postgres', ...env });
    if (use) await provider.openSession();
  } catch (error) {
    return error as Error & { code?: string };
  } finally {
    await provider?.close();
  }
  throw new Error('expected a failure');
}

/** Everything an error says, causes included, as `String()` and logs would show it. */
function everything(error: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = error; e instanceof Error; e = e.cause) parts.push(e.message, String(e.stack));
  return parts.join('\n');
}

function fromEnv(env: Record<string, string>) {
  return parseConfig(pgLockConfigSchema, backend.fromEnv(env), {
    backend: 'postgres',
    fields: pgLockFields,
    fromEnv: true,
  });
}

describe('postgres lock backend config', () => {
  it('has the documented defaults', () => {
    expect(parseConfig(pgLockConfigSchema, {}, { backend: 'postgres', fields: pgLockFields })).toEqual({
      connectionString: undefined,
      urlSource: 'BATON_LOCK_DATABASE_URL',
      schema: 'baton_locks',
      ttlMs: 15_000,
      lockDelayMs: 15_000,
      poolSize: 4,
      connectTimeoutMs: 10_000,
      pollIntervalMs: 1_000,
      migrate: true,
    });
  });

  it('reads BATON_LOCK_DATABASE_URL, else DATABASE_URL, and the baton variables', () => {
    const own = 'postgres://locks@db-a/app';
    const shared = 'postgres://app@db-b/app';
    expect(fromEnv({ DATABASE_URL: shared })).toMatchObject({
      connectionString: shared,
      urlSource: 'DATABASE_URL',
    });
    // The lock URL wins, and a broken DATABASE_URL beside it is not even looked at.
    expect(fromEnv({ BATON_LOCK_DATABASE_URL: own, DATABASE_URL: 'mysql://x' })).toMatchObject({
      connectionString: own,
      urlSource: 'BATON_LOCK_DATABASE_URL',
    });
    expect(
      fromEnv({
        BATON_PG_LOCK_SCHEMA: 'my_locks',
        BATON_SESSION_TTL: '3s',
        BATON_LOCK_DELAY: '0',
        BATON_PG_LOCK_POOL_SIZE: '8',
        BATON_PG_LOCK_MIGRATE: 'false',
        BATON_PG_LOCK_POLL: '250ms',
      }),
    ).toMatchObject({
      schema: 'my_locks',
      ttlMs: 3_000,
      lockDelayMs: 0,
      poolSize: 8,
      migrate: false,
      pollIntervalMs: 250,
    });
  });

  it('names the variable and the fix for a bad value', async () => {
    const error = (await failure({ BATON_SESSION_TTL: 'soon' }, false)) as ConfigError;
    expect(error).toMatchObject({ code: 'CONFIG_INVALID', field: 'BATON_SESSION_TTL' });
    expect(error.message).toMatch(/duration/);
    const schema = (await failure({ BATON_PG_LOCK_SCHEMA: 'Bad-Name' }, false)) as ConfigError;
    expect(schema).toMatchObject({ code: 'CONFIG_INVALID', field: 'BATON_PG_LOCK_SCHEMA' });
  });

  it('never echoes the password of a URL it refuses', async () => {
    const error = (await failure(
      { BATON_LOCK_DATABASE_URL: `mysql://app:${SECRET}@db:3306/app` },
      false,
    )) as ConfigError;
    expect(error).toMatchObject({ code: 'CONFIG_INVALID', field: 'BATON_LOCK_DATABASE_URL' });
    expect(everything(error)).not.toContain(SECRET);
  });

  it('is chosen by name through createLockProvider (first-party registry), with env-mapped settings', async () => {
    const db = database.db();
    const provider = await createLockProvider({
      BATON_BACKEND: 'postgres',
      DATABASE_URL: db.connectionString,
      BATON_PG_LOCK_SCHEMA: await db.newSchema('locks_cfg'),
      BATON_SESSION_TTL: '2s',
    });
    try {
      expect(provider).toBeInstanceOf(PgLockProvider);
      const session = await provider.openSession();
      expect(session.ttlMs).toBe(2_000);
      const lease = await session.tryAcquire('cfg/key');
      expect(lease?.fence).toBeGreaterThan(0);
    } finally {
      await provider.close();
    }
  });

  it('reports an unreachable database as UNAVAILABLE naming the variable, without the password', async () => {
    const error = await failure({
      BATON_LOCK_DATABASE_URL: `postgres://app:${SECRET}@127.0.0.1:1/app`,
      BATON_PG_LOCK_CONNECT_TIMEOUT: '2s',
    });
    expect(error).toMatchObject({ code: 'UNAVAILABLE' });
    expect(error.message).toContain('BATON_LOCK_DATABASE_URL');
    expect(everything(error)).not.toContain(SECRET);
  });

  it('says how to create missing lock tables when it may not create them itself', async () => {
    const db = database.db();
    const error = await failure({
      DATABASE_URL: db.connectionString,
      BATON_PG_LOCK_SCHEMA: 'baton_locks_never_made',
      BATON_PG_LOCK_MIGRATE: 'false',
    });
    expect(error).toMatchObject({ code: 'RESOURCE_NOT_FOUND' });
    expect(error.message).toMatch(/BATON_PG_LOCK_MIGRATE=true.*migrate\(\)/s);
    expect(error.message).toContain('baton_locks_never_made');
  });

  it('migrates idempotently, and concurrent first starts do not race', async () => {
    const db = database.db();
    const schema = await db.newSchema('locks_mig');
    const providers = [1, 2, 3].map(() => makeProvider(db.connectionString, { schema }));
    try {
      const results = await Promise.all(providers.map((p) => p.migrate()));
      expect(results.filter((r) => r.applied.length > 0)).toHaveLength(1);
      expect((await providers[0]!.migrate()).applied).toEqual([]);
    } finally {
      await Promise.all(providers.map((p) => p.close()));
    }
  });
});

describe.runIf(process.env.DATABASE_URL)(
  'postgres lock backend against a server that checks passwords',
  () => {
    it('reports a wrong password as PERMISSION_DENIED naming the variable, never echoing it', async () => {
      const url = new URL(database.db().connectionString);
      url.password = SECRET;
      const error = await failure({ DATABASE_URL: url.toString() });
      expect(error).toMatchObject({ code: 'PERMISSION_DENIED' });
      expect(error.message).toContain('DATABASE_URL');
      expect(error.message).toMatch(/28P01/);
      expect(everything(error)).not.toContain(SECRET);
    });
  },
);
