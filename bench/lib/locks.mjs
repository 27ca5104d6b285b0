// Lock contestants: "ours" (a baton LockProvider session) and "raw" (the backend's client issuing the
// minimum requests for the same effect), per backend. Each contestant exposes the same two calls so the
// measuring loop treats them alike:
//
//   const c = await open...();  const h = await c.acquire(key);  // h: a handle, or null on contention
//   await c.release(key, h);    await c.close();

import { randomUUID } from 'node:crypto';
import { LOCAL_AWS, rawDynamoLock } from './dynamo.mjs';
import { createNullLockProvider } from './null-locks.mjs';
import { importWorkspace } from './packages.mjs';

export const BACKENDS = ['memory', 'consul', 'dynamodb'];

/** Which embedded server a backend needs (`undefined` for none). */
export function serverKind(backend) {
  if (backend === 'etcd') return 'etcd';
  if (backend === 'redis') return 'redis';
  if (backend === 'dynamodb' || backend === 'dynamodb-epoch') return 'dynalite';
  return backend === 'consul' ? 'consul' : undefined;
}

/** Options of the Consul test server used by every benchmark: short TTLs allowed, as the testkit offers. */
export const CONSUL_SERVER_OPTIONS = { sessionTtlMinMs: 100 };
/** The same, counting requests (for request-count passes). */
export const CONSUL_COUNTING_OPTIONS = { ...CONSUL_SERVER_OPTIONS, countRequests: true };

/**
 * A baton LockProvider for `backend`, configured through `createLockProvider` exactly as an application
 * would (the memory backend gets a fresh store). `settings`: `ttlMs`, `lockDelayMs`, extra backend fields.
 */
export async function createProvider(backend, server, settings = {}) {
  const core = await importWorkspace('@baton/core', ['createLockProvider', 'MemoryLockProvider']);
  const { ttlMs = 15_000, lockDelayMs = 15_000, ...extra } = settings;
  if (backend === 'memory') return new core.MemoryLockProvider({ ttlMs, lockDelayMs, ...extra });
  if (backend === 'null') return createNullLockProvider(extra);
  if (backend === 'consul') {
    await importWorkspace('@baton/backend-consul', ['backend']);
    return core.createLockProvider({
      backend: 'consul',
      address: server.url,
      ttlMs,
      lockDelayMs,
      allowShortTtl: ttlMs < 10_000,
      // The same prefix in every process: workers in different processes must lock the same keys.
      prefix: 'bench/',
      ...extra,
    });
  }
  if (backend === 'dynamodb' || backend === 'dynamodb-epoch') {
    await importWorkspace('@baton/backend-dynamodb', ['backend']);
    useLocalAwsCredentials();
    const fenceMode = backend === 'dynamodb-epoch' ? 'epoch' : process.env.BATON_DYNAMODB_FENCE_MODE;
    const provider = await core.createLockProvider({
      backend: 'dynamodb',
      ...dynamoSettings(server.url),
      ...(fenceMode ? { fenceMode } : {}),
      ttlMs,
      lockDelayMs,
      ...extra,
    });
    // Table setup is not measured; on a machine this busy dynalite can miss a request timeout now and then.
    for (let attempt = 1; ; attempt++) {
      try {
        await provider.ensureTable();
        break;
      } catch (error) {
        if (attempt >= 3 || !['UNAVAILABLE', 'TIMEOUT'].includes(error?.code)) throw error;
      }
    }
    return provider;
  }
  if (backend === 'etcd') {
    await importWorkspace('@baton/backend-etcd', ['backend']);
    return core.createLockProvider({
      backend: 'etcd',
      endpoints: server.url,
      ttlMs: Math.max(1_000, ttlMs),
      lockDelayMs,
      prefix: 'bench/',
      ...extra,
    });
  }
  if (backend === 'postgres') {
    await importWorkspace('@baton/backend-postgres', ['backend']);
    return core.createLockProvider({
      backend: 'postgres',
      url: server.url,
      schema: server.schema,
      ttlMs: Math.max(200, ttlMs),
      lockDelayMs,
      poolSize: 16,
      ...extra,
    });
  }
  if (backend === 'redis') {
    await importWorkspace('@baton/backend-redis', ['backend']);
    return core.createLockProvider({
      backend: 'redis',
      url: server.url,
      ttlMs,
      lockDelayMs,
      prefix: 'bench:',
      ...extra,
    });
  }
  throw new Error(`unknown backend ${backend}`);
}

/** Fields of the DynamoDB backend config for a local dynalite. */
export function dynamoSettings(endpoint) {
  return { endpoint, region: LOCAL_AWS.region, table: 'baton_locks' };
}

/**
 * The DynamoDB backend takes credentials from the AWS SDK's default chain, as in production; dynalite
 * accepts any, so the environment gets dummy ones unless some are set already.
 */
export function useLocalAwsCredentials() {
  process.env.AWS_ACCESS_KEY_ID ??= LOCAL_AWS.credentials.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY ??= LOCAL_AWS.credentials.secretAccessKey;
}

/** Ours: one session on a fresh provider; acquire = `tryAcquire`, release = `lease.release()`. */
export async function openOurs(backend, server, settings = {}) {
  const provider = await createProvider(backend, server, settings);
  const session = await provider.openSession();
  return {
    name: 'ours',
    provider,
    session,
    acquire: (key) => session.tryAcquire(key),
    release: (_key, lease) => lease.release(),
    async close() {
      await session.destroy().catch(() => {});
      await provider.close();
    },
  };
}

/** Raw: the backend's own client (or store) doing the minimum for acquire + release. */
export async function openRaw(backend, server) {
  if (backend === 'memory') return openRawMemory();
  if (backend === 'consul') return openRawConsul(server.url);
  if (backend === 'etcd') return openRawEtcd(server.url);
  if (backend === 'postgres') return openRawPostgres(server);
  if (backend === 'redis') return openRawRedis(server.url);
  if (backend === 'dynamodb' || backend === 'dynamodb-epoch') {
    const raw = await rawDynamoLock(server.url);
    return {
      name: 'raw',
      acquire: (key) => raw.acquire(key),
      release: (key) => raw.release(key),
      close: async () => raw.close(),
    };
  }
  throw new Error(`unknown backend ${backend}`);
}

/** The memory backend's store called directly: what the provider adds (sessions, leases, signals) is gone. */
async function openRawMemory() {
  const { MemoryLockStore } = await importWorkspace('@baton/core', ['MemoryLockStore']);
  const store = new MemoryLockStore();
  const sessionId = store.createSession({ ttlMs: 15_000, lockDelayMs: 15_000 });
  return {
    name: 'raw',
    store,
    acquire: async (key) => store.acquire(sessionId, key, {})?.fence ?? null,
    release: async (key, fence) => store.release(sessionId, key, fence),
    async close() {
      store.destroySession(sessionId);
    },
  };
}

/**
 * The `consul` npm client with one session (TTL, renewed by nobody during the short measurement): acquire =
 * `kv.set({ key, value: '', acquire: session })`, release = `kv.set({ key, value: '', release: session })`.
 * Two requests per round trip, no fencing token read back.
 */
async function openRawConsul(url) {
  const { default: Consul } = await import('consul');
  const { hostname, port } = new URL(url);
  const consul = new Consul({ host: hostname, port: Number(port) });
  const { ID: sessionId } = await consul.session.create({
    ttl: '60s',
    lockdelay: '15s',
    behavior: 'release',
  });
  const prefix = `bench-raw-${randomUUID().slice(0, 8)}/`;
  return {
    name: 'raw',
    acquire: async (key) =>
      (await consul.kv.set({ key: prefix + key, value: '', acquire: sessionId })) ? true : null,
    release: (key) => consul.kv.set({ key: prefix + key, value: '', release: sessionId }),
    async close() {
      await consul.session.destroy(sessionId).catch(() => {});
      consul.destroy();
    },
  };
}

/**
 * The `etcd3` npm client with one lease (60 s, renewed by nobody during the short measurement): acquire = one
 * txn `if create_revision(key) == 0 then put key (lease)`, release = an unconditional delete. One request each,
 * the client's default retry policy, no lock-delay guard, no fence check on release.
 */
async function openRawEtcd(url) {
  const { Etcd3 } = await import('etcd3');
  const client = new Etcd3({ hosts: url });
  const lease = client.lease(60, { autoKeepAlive: false });
  const leaseId = await lease.grant();
  const ns = client.namespace(`bench-raw-${randomUUID().slice(0, 8)}/`);
  return {
    name: 'raw',
    acquire: async (key) =>
      (await ns.if(key, 'Create', '==', 0).then(ns.put(key).value('').lease(leaseId)).commit()).succeeded
        ? true
        : null,
    release: (key) => ns.delete().key(key),
    async close() {
      await lease.revoke().catch(() => {});
      client.close();
    },
  };
}

/**
 * `pg` alone, calling the same two functions of the lock schema baton's backend calls (one statement each:
 * `acquire()` and `release()`), on a pool of 16 with one session row inserted up front and renewed by nobody
 * during the short measurement. What is left out: baton's session and lease bookkeeping, error mapping,
 * renewals, signals.
 */
async function openRawPostgres(server) {
  const { default: pg } = await import('pg');
  const pool = new pg.Pool({ connectionString: server.url, max: 16 });
  pool.on('error', (error) => process.stderr.write(`raw pg pool: idle connection error: ${error.message}\n`));
  const s = `"${server.schema}"`;
  const sessionId = randomUUID();
  await pool.query(
    `INSERT INTO ${s}.sessions (id, ttl_ms, lock_delay_ms, expires_at, free_at)
     VALUES ($1, 60000, 15000, clock_timestamp() + interval '60 s', clock_timestamp() + interval '75 s')`,
    [sessionId],
  );
  return {
    name: 'raw',
    acquire: async (key) =>
      (
        await pool.query(`SELECT fence FROM ${s}.acquire($1::uuid, $2::text, NULL, 0::bigint)`, [
          sessionId,
          key,
        ])
      ).rows[0].fence ?? null,
    release: (key, fence) =>
      pool.query(`SELECT ${s}.release($1::uuid, $2::text, $3::bigint)`, [sessionId, key, fence]),
    async close() {
      await pool.query(`DELETE FROM ${s}.sessions WHERE id = $1`, [sessionId]).catch(() => {});
      await pool.end();
    },
  };
}

/**
 * The `ioredis` client: acquire = `SET key token NX PX 60000`, release = an unconditional `DEL`. One request
 * each: no fence, no session, no owner check on release, no lock-delay.
 */
async function openRawRedis(url) {
  const { Redis } = await import('ioredis');
  const client = new Redis(url);
  const prefix = `bench-raw-${randomUUID().slice(0, 8)}:`;
  return {
    name: 'raw',
    acquire: async (key) =>
      (await client.set(prefix + key, '1', 'PX', 60_000, 'NX')) === 'OK' ? true : null,
    release: (key) => client.del(prefix + key),
    async close() {
      client.disconnect();
    },
  };
}
