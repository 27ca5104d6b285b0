import { createLockProvider } from '@baton/core';
import { type EtcdServer, startEtcd } from '@baton/test-servers/etcd';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { haveEtcd } from './harness.js';

const ROOT_PASSWORD = 'root-password-7b1e4c';
const WORKER_PASSWORD = 'worker-password-c0ffee42';
const PREFIX = 'jobs/';

describe.skipIf(!haveEtcd)('etcd with authentication', () => {
  let server: EtcdServer;
  beforeAll(async () => {
    server = await startEtcd();
    const admin = new Etcd3({ hosts: server.endpoint });
    try {
      // Least privilege: the worker's role may read and write its key prefix, and nothing else.
      await admin.role('root').create();
      await admin.user('root').create(ROOT_PASSWORD);
      await admin.user('root').addRole('root');
      const role = await admin.role('baton-worker').create();
      await role.grant({ permission: 'Readwrite', range: admin.range({ prefix: PREFIX }) });
      await admin.user('worker').create(WORKER_PASSWORD);
      await admin.user('worker').addRole('baton-worker');
      await admin.auth.authEnable();
    } finally {
      admin.close();
    }
  });
  afterAll(async () => {
    await server?.close();
  });

  const env = (extra: Record<string, string>) => ({
    BATON_BACKEND: 'etcd',
    ETCD_ENDPOINTS: server.endpoint,
    BATON_SESSION_TTL: '2s',
    BATON_LOCK_DELAY: '1s',
    ...extra,
  });

  it('works with a role limited to the key prefix', async () => {
    const provider = await createLockProvider(
      env({ ETCDCTL_USER: 'worker', ETCDCTL_PASSWORD: WORKER_PASSWORD, BATON_ETCD_PREFIX: PREFIX }),
    );
    try {
      const session = await provider.openSession();
      const lease = await session.tryAcquire('task/1', { value: 'w1' });
      expect(lease).not.toBeNull();
      expect(await provider.getHolder('task/1')).toMatchObject({ sessionId: session.id, value: 'w1' });
      expect(await provider.list?.('task/')).toHaveLength(1);
      expect(await lease?.release()).toBe(true);
      await session.destroy();
    } finally {
      await provider.close();
    }
  });

  it('a wrong password is PERMISSION_DENIED, and the password is never in the message', async () => {
    const provider = await createLockProvider(
      env({
        ETCDCTL_USER: 'worker',
        ETCDCTL_PASSWORD: `${WORKER_PASSWORD}-wrong`,
        BATON_ETCD_PREFIX: PREFIX,
      }),
    );
    try {
      const error = (await provider.openSession().then(
        () => undefined,
        (e: unknown) => e,
      )) as { code?: string; message: string; cause?: unknown };
      expect(error.code).toBe('PERMISSION_DENIED');
      expect(error.cause).toBeDefined();
      expect(error.message).toMatch(/ETCDCTL_USER and ETCDCTL_PASSWORD/);
      expect(error.message).not.toContain(WORKER_PASSWORD);
    } finally {
      await provider.close();
    }
  });

  it('a prefix outside the role is PERMISSION_DENIED, naming the permission to grant', async () => {
    const provider = await createLockProvider(
      env({ ETCDCTL_USER: `worker:${WORKER_PASSWORD}`, BATON_ETCD_PREFIX: 'elsewhere/' }),
    );
    try {
      const session = await provider.openSession();
      const error = (await session.tryAcquire('task/1').then(
        () => undefined,
        (e: unknown) => e,
      )) as { code?: string; message: string };
      expect(error.code).toBe('PERMISSION_DENIED');
      expect(error.message).toMatch(/readwrite .*elsewhere\//);
      expect(error.message).not.toContain(WORKER_PASSWORD);
      await session.destroy();
    } finally {
      await provider.close();
    }
  });
});
