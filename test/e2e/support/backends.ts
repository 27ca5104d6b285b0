import { randomBytes } from 'node:crypto';
import { createLockProvider, type LockProvider } from '@baton/core';
import { startConsulTestServer } from '@baton/test-servers/consul-server';
import { startDynalite } from '@baton/test-servers/dynalite';
import { testDatabase } from '@baton/test-servers/pglite';
import { startRedis } from '@baton/test-servers/redis';

/** A running lock backend, configured the way users configure it: environment variables only. */
export interface LockBackend {
  readonly name: string;
  /** `BATON_BACKEND` and the backend's variables; passed to `createLockProvider()` and to child processes. */
  readonly env: Readonly<Record<string, string>>;
  /** Whether providers in different processes share the locks (false for the in-process memory backend). */
  readonly crossProcess: boolean;
  provider(): Promise<LockProvider>;
  close(): Promise<void>;
}

/** How to start one backend for a test file. */
export interface LockBackendCase {
  readonly name: string;
  readonly crossProcess: boolean;
  start(options: BackendTiming): Promise<LockBackend>;
}

/** Session settings for a run: short TTLs so that crash takeovers happen within seconds. */
export interface BackendTiming {
  ttlMs: number;
  lockDelayMs: number;
}

const randomPrefix = () => `e2e-${randomBytes(4).toString('hex')}`;

function fromEnv(
  name: string,
  env: Record<string, string>,
  crossProcess: boolean,
  close: () => Promise<void>,
) {
  return {
    name,
    env,
    crossProcess,
    provider: () => createLockProvider(env),
    close,
  } satisfies LockBackend;
}

const memory: LockBackendCase = {
  name: 'memory',
  crossProcess: false,
  start: async ({ ttlMs, lockDelayMs }) =>
    fromEnv(
      'memory',
      { BATON_BACKEND: 'memory', BATON_SESSION_TTL: `${ttlMs}ms`, BATON_LOCK_DELAY: `${lockDelayMs}ms` },
      false,
      async () => undefined,
    ),
};

const consul: LockBackendCase = {
  name: 'consul',
  crossProcess: true,
  start: async ({ ttlMs, lockDelayMs }) => {
    const server = await startConsulTestServer({ sessionTtlMinMs: 100 });
    return fromEnv(
      'consul',
      {
        BATON_BACKEND: 'consul',
        CONSUL_HTTP_ADDR: server.url,
        BATON_CONSUL_PREFIX: `${randomPrefix()}/`,
        BATON_CONSUL_ALLOW_SHORT_TTL: 'true',
        BATON_SESSION_TTL: `${ttlMs}ms`,
        BATON_LOCK_DELAY: `${lockDelayMs}ms`,
      },
      true,
      () => server.close(),
    );
  },
};

const dynamodb: LockBackendCase = {
  name: 'dynamodb',
  crossProcess: true,
  start: async ({ ttlMs, lockDelayMs }) => {
    const server = await startDynalite();
    // dynalite accepts any credentials; the SDK's default chain (here and in child processes) reads these.
    const credentials = { AWS_ACCESS_KEY_ID: 'baton-e2e', AWS_SECRET_ACCESS_KEY: 'baton-e2e' };
    Object.assign(process.env, credentials);
    const env = {
      BATON_BACKEND: 'dynamodb',
      AWS_ENDPOINT_URL_DYNAMODB: server.endpoint,
      AWS_REGION: 'local',
      ...credentials,
      BATON_DYNAMODB_TABLE: `baton_${randomPrefix().replace('-', '_')}`,
      BATON_SESSION_TTL: `${ttlMs}ms`,
      BATON_LOCK_DELAY: `${lockDelayMs}ms`,
    };
    const setup = (await createLockProvider(env)) as LockProvider & { ensureTable?: () => Promise<unknown> };
    try {
      await setup.ensureTable?.();
    } finally {
      await setup.close();
    }
    return fromEnv('dynamodb', env, true, () => server.close());
  },
};

const postgres: LockBackendCase = {
  name: 'postgres',
  crossProcess: true,
  start: async ({ ttlMs, lockDelayMs }) => {
    // A database of its own (PGlite, or a fresh schema on the server at DATABASE_URL), apart from the tasks'.
    const db = await testDatabase();
    return fromEnv(
      'postgres',
      {
        BATON_BACKEND: 'postgres',
        BATON_LOCK_DATABASE_URL: db.connectionString,
        BATON_PG_LOCK_SCHEMA: db.schema,
        BATON_SESSION_TTL: `${ttlMs}ms`,
        BATON_LOCK_DELAY: `${lockDelayMs}ms`,
      },
      true,
      () => db.close(),
    );
  },
};

/**
 * Every lock backend that has landed. A backend joins the end-to-end runs once its package exports
 * `backend` (what `createLockProvider()` loads) and its test server exists in @baton/test-servers: add its case here
 * and a `test/e2e/worker-<name>.test.ts` calling `exactlyOnceSuite('<name>')` (backends-covered checks).
 */
const redis: LockBackendCase = {
  name: 'redis',
  crossProcess: true,
  start: async ({ ttlMs, lockDelayMs }) => {
    const server = await startRedis();
    return fromEnv(
      'redis',
      {
        BATON_BACKEND: 'redis',
        REDIS_URL: server.url,
        BATON_REDIS_PREFIX: `${randomPrefix()}:`,
        BATON_SESSION_TTL: `${ttlMs}ms`,
        BATON_LOCK_DELAY: `${lockDelayMs}ms`,
      },
      true,
      () => server.close(),
    );
  },
};

export const lockBackends: readonly LockBackendCase[] = [memory, consul, dynamodb, postgres, redis];
