import { startConsole } from '@baton/console';
import {
  createLockProvider,
  Election,
  type LockProvider,
  type LockSession,
  semaphore,
  semaphoreQueues,
} from '@baton/core';
import { PostgresTaskSource } from '@baton/source-postgres';
import { startConsulTestServer } from '@baton/test-servers/consul-server';
import { startDynalite } from '@baton/test-servers/dynalite';
import { etcdAvailable, startEtcd } from '@baton/test-servers/etcd';
import { type TestDatabase, testDatabase } from '@baton/test-servers/pglite';
import { redisAvailable, startRedis } from '@baton/test-servers/redis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baton } from './helpers.js';

// The console's locks view is generic over the LockProvider contract: this checks it against every built-in
// backend on its real server (the Consul-compatible test server, dynalite, etcd, redis-server, PostgreSQL):
// holders with their fence, age and lease left, the waiting line where the backend keeps one, semaphores and
// leaders, as the backend itself reports them.

let db: TestDatabase;
beforeAll(async () => {
  db = await testDatabase();
}, 120_000);
afterAll(async () => {
  await db?.close();
});

interface Server {
  env: Record<string, string>;
  close(): Promise<void>;
}

const servers: Record<string, { available: () => boolean; start: () => Promise<Server> }> = {
  consul: {
    available: () => true,
    start: async () => {
      const consul = await startConsulTestServer();
      return { env: { BATON_BACKEND: 'consul', CONSUL_HTTP_ADDR: consul.url }, close: () => consul.close() };
    },
  },
  dynamodb: {
    available: () => true,
    start: async () => {
      const dynalite = await startDynalite();
      const env = {
        BATON_BACKEND: 'dynamodb',
        AWS_ENDPOINT_URL_DYNAMODB: dynalite.endpoint,
        AWS_ACCESS_KEY_ID: 'test',
        AWS_SECRET_ACCESS_KEY: 'test',
        AWS_REGION: 'us-east-1',
      };
      // The AWS SDK in this process reads its credentials from process.env, not from the baton settings.
      process.env.AWS_ACCESS_KEY_ID ??= 'test';
      process.env.AWS_SECRET_ACCESS_KEY ??= 'test';
      const created = await baton(['dynamodb', 'create-table'], { env });
      expect(created.code, created.stderr).toBe(0);
      return { env, close: () => dynalite.close() };
    },
  },
  etcd: {
    available: () => etcdAvailable('console against etcd'),
    start: async () => {
      const etcd = await startEtcd();
      return { env: { BATON_BACKEND: 'etcd', ETCD_ENDPOINTS: etcd.endpoint }, close: () => etcd.close() };
    },
  },
  redis: {
    available: () => redisAvailable('console against Redis'),
    start: async () => {
      const redis = await startRedis();
      return { env: { BATON_BACKEND: 'redis', REDIS_URL: redis.url }, close: () => redis.close() };
    },
  },
  postgres: {
    available: () => true,
    start: async () => ({
      env: {
        BATON_BACKEND: 'postgres',
        BATON_LOCK_DATABASE_URL: db.connectionString,
        BATON_PG_LOCK_SCHEMA: await db.newSchema('consolelocks'),
      },
      close: async () => {},
    }),
  },
};

async function until(condition: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met within 20 s');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe.each(Object.keys(servers))('the console on the %s backend', (name) => {
  const spec = servers[name]!;
  it.runIf(spec.available())(
    'shows holders with fence, age and lease left, the line, semaphores and leaders as the backend reports them',
    { timeout: 90_000 },
    async () => {
      const server = await spec.start();
      const locks: LockProvider = await createLockProvider(server.env);
      const source = new PostgresTaskSource({
        schema: await db.newSchema('consolesrc'),
        connection: { connectionString: db.connectionString, poolSize: 2 },
      });
      await source.migrate();
      const pool = new pg.Pool({ connectionString: db.connectionString, max: 2 });
      pool.on('error', () => {});
      const running = await startConsole({
        source,
        db: pool,
        locks,
        port: 0,
        elections: ['svc/report/leader'],
      });
      const sessions: LockSession[] = [];
      const stop = new AbortController();
      const waits: Array<Promise<unknown>> = [];
      try {
        for (let i = 0; i < 3; i++) sessions.push(await locks.openSession());
        const [holder, waiter, other] = sessions as [LockSession, LockSession, LockSession];
        const before = Date.now();
        const lease = (await holder.tryAcquire('jobs/nightly', { value: '<b>host-a</b>' }))!;
        const after = Date.now();
        expect(lease).not.toBeNull();
        const permit = await semaphore(locks, 'limit/partner', { limit: 2 }).tryAcquire(other, {
          value: 'o',
        });
        expect(permit).not.toBeNull();
        const leadership = await new Election(locks, 'svc/report/leader').campaign(other, {
          value: { id: 'reporter-1' },
        });
        if (locks.capabilities.waiters && locks.waiters) {
          waits.push(waiter.acquire('jobs/nightly', { signal: stop.signal }).catch(() => null));
          await until(async () => (await locks.waiters!('jobs/nightly')).length === 1);
        }

        const snapshot = await running.refresher.refresh();
        const view = snapshot.locks!;
        expect(view).toMatchObject({ backend: name, listable: true, error: null });
        const row = view.holders.find((h) => h.key === 'jobs/nightly')!;
        expect(row).toMatchObject({ sessionId: holder.id, fence: lease.fence, value: '<b>host-a</b>' });
        const backend = (await locks.getHolder('jobs/nightly'))!;
        expect(view.holderTimes).toBe(locks.capabilities.holderTimes === true);
        if (view.holderTimes) {
          // The backend's record: the server's clock or the holder's own, all on this machine here.
          expect(row.acquiredAt).toBe(backend.acquiredAt);
          expect(row.acquiredAtSource).toBe(backend.acquiredAtSource);
          expect(row.acquiredAt!).toBeGreaterThanOrEqual(before - 1_000);
          expect(row.acquiredAt!).toBeLessThanOrEqual(after + 1_000);
          expect(row.ageMs).toBeGreaterThanOrEqual(0);
          const left = row.leaseRemainingMs ?? row.leaseRemainingAtMostMs;
          expect(left).toBeGreaterThan(0);
          expect((row.leaseRemainingMs === null) === (backend.leaseRemainingMs === undefined)).toBe(true);
        }
        if (locks.capabilities.waiters) {
          expect(view.line).toBe('listed');
          expect(row.waiters?.map((w) => [w.position, w.sessionId])).toEqual([[1, waiter.id]]);
        } else {
          expect(view.line).toBe(locks.capabilities.fairQueue ? 'unlisted' : 'none');
          expect(row.waiters).toBeNull();
        }
        expect(view.semaphores).toEqual([
          expect.objectContaining({
            name: 'limit/partner',
            limits: [2],
            free: 1,
            permits: [
              expect.objectContaining({ slot: permit!.slot, sessionId: other.id, fence: permit!.fence }),
            ],
            waiting: {
              queued: semaphoreQueues(locks),
              head: null,
              behind: semaphoreQueues(locks) ? 0 : null,
            },
          }),
        ]);
        expect(snapshot.leaders).toEqual([
          {
            key: 'svc/report/leader',
            leader: expect.objectContaining({ id: 'reporter-1', term: leadership.term, sessionId: other.id }),
            error: null,
          },
        ]);
      } finally {
        stop.abort();
        await Promise.all(waits);
        for (const session of sessions) await session.destroy().catch(() => {});
        await running.close();
        await locks.close();
        await source.close();
        await pool.end();
        await server.close();
      }
    },
  );
});
