import { DynamoLockProvider } from '@baton/backend-dynamodb';
import { createLockProvider, type LockProvider, MemoryLockProvider } from '@baton/core';
import { startConsulTestServer } from '@baton/test-servers/consul-server';
import { startDynalite } from '@baton/test-servers/dynalite';
import { startEtcd } from '@baton/test-servers/etcd';
import { startRedis } from '@baton/test-servers/redis';

/** Lock backends the demo can embed. */
export const DEMO_BACKENDS = ['memory', 'consul', 'dynamodb', 'etcd', 'postgres', 'redis'] as const;
export type DemoBackend = (typeof DEMO_BACKENDS)[number];

/** A lock backend running inside the demo process. */
export interface EmbeddedLocks {
  readonly backend: DemoBackend;
  /** What to show the user: where the server listens, or `in-process`. */
  readonly where: string;
  /** Child workers can connect (every backend but memory). */
  readonly shared: boolean;
  /** Environment that points a `baton worker` process at this backend. */
  readonly env: Readonly<Record<string, string>>;
  /** A provider in this process (memory: the one shared store). */
  provider(): Promise<LockProvider>;
  close(): Promise<void>;
}

/**
 * Starts the demo's lock backend in this process: nothing for memory, the Consul-compatible test server for
 * consul, dynalite (plus the lock table) for dynamodb, a real etcd (Debian's etcd-server, in a process of its
 * own, on free ports) for etcd, a schema of the demo's own PGlite (`databaseUrl`) for postgres, and a real
 * redis-server (Debian's, likewise) for redis.
 */
export async function startEmbeddedLocks(backend: DemoBackend, databaseUrl: string): Promise<EmbeddedLocks> {
  if (backend === 'postgres') {
    const env = {
      BATON_BACKEND: 'postgres',
      BATON_LOCK_DATABASE_URL: databaseUrl,
      BATON_PG_LOCK_SCHEMA: 'baton_demo_locks',
    };
    return {
      backend,
      where: 'schema baton_demo_locks of the demo database (PGlite)',
      shared: true,
      env,
      provider: () => createLockProvider(env),
      close: async () => undefined,
    };
  }
  if (backend === 'memory') {
    const provider = new MemoryLockProvider({ lockDelayMs: 0 });
    return {
      backend,
      where: 'in-process',
      shared: false,
      env: { BATON_BACKEND: 'memory' },
      provider: async () => provider,
      close: () => provider.close(),
    };
  }
  if (backend === 'consul') {
    const server = await startConsulTestServer();
    const env = { BATON_BACKEND: 'consul', CONSUL_HTTP_ADDR: server.url, BATON_CONSUL_PREFIX: 'baton-demo/' };
    return {
      backend,
      where: `Consul-compatible test server at ${server.url}`,
      shared: true,
      env,
      provider: () => createLockProvider(env),
      close: () => server.close(),
    };
  }
  if (backend === 'redis') {
    const server = await startRedis();
    const env = { BATON_BACKEND: 'redis', REDIS_URL: server.url, BATON_REDIS_PREFIX: 'baton-demo:' };
    return {
      backend,
      where: `redis-server at ${server.url}`,
      shared: true,
      env,
      provider: () => createLockProvider(env),
      close: () => server.close(),
    };
  }
  if (backend === 'etcd') {
    const server = await startEtcd();
    const env = { BATON_BACKEND: 'etcd', ETCD_ENDPOINTS: server.endpoint, BATON_ETCD_PREFIX: 'baton-demo/' };
    return {
      backend,
      where: `etcd at ${server.endpoint}`,
      shared: true,
      env,
      provider: () => createLockProvider(env),
      close: () => server.close(),
    };
  }
  const server = await startDynalite();
  const table = 'baton_demo_locks';
  // dynalite accepts any credentials; the AWS SDK insists on having some. In this process they are passed
  // explicitly (the SDK reads its variables from process.env, which the demo leaves alone).
  const credentials = { accessKeyId: 'baton-demo', secretAccessKey: 'baton-demo' };
  const env = {
    BATON_BACKEND: 'dynamodb',
    AWS_ENDPOINT_URL_DYNAMODB: server.endpoint,
    AWS_REGION: 'local',
    AWS_ACCESS_KEY_ID: credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
    BATON_DYNAMODB_TABLE: table,
  };
  const provider = async () =>
    new DynamoLockProvider({ endpoint: server.endpoint, region: 'local', credentials, table });
  try {
    const admin = await provider();
    try {
      await admin.ensureTable();
    } finally {
      await admin.close();
    }
  } catch (error) {
    await server.close();
    throw error;
  }
  return {
    backend,
    where: `dynalite at ${server.endpoint}`,
    shared: true,
    env,
    provider,
    close: () => server.close(),
  };
}
