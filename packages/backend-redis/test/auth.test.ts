import { inspect } from 'node:util';
import { createLockProvider } from '@baton/core';
import { type RedisServer, startRedis } from '@baton/test-servers/redis';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACL_COMMANDS } from '../src/index.js';
import { haveRedis } from './harness.js';

const ADMIN_PASSWORD = 'admin-password-5d2e9a71';
const WORKER_PASSWORD = 'worker-password-c0ffee42';
const PREFIX = 'jobs:';

type Failure = { code?: string; message: string; cause?: unknown };

async function failure(promise: Promise<unknown>): Promise<Failure> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: Failure) => error,
  );
}

/** The error, its causes and every property on them, as a logger that dumps everything would print them. */
function everything(error: unknown): string {
  return `${inspect(error, { depth: 10, showHidden: true })} ${JSON.stringify(error)}`;
}

describe.skipIf(!haveRedis)('redis with authentication', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedis({ args: ['--requirepass', ADMIN_PASSWORD] });
    const admin = new Redis(server.url, { password: ADMIN_PASSWORD, lazyConnect: true });
    try {
      // Least privilege: the worker may run baton's commands on its key prefix, and nothing else.
      await admin.call(
        'ACL',
        'SETUSER',
        'worker',
        'on',
        `>${WORKER_PASSWORD}`,
        `~${PREFIX}*`,
        ...ACL_COMMANDS.map((command) => `+${command}`),
      );
      const withoutPexpire = ACL_COMMANDS.filter((command) => command !== 'pexpire');
      await admin.call(
        'ACL',
        'SETUSER',
        'narrow',
        'on',
        `>${WORKER_PASSWORD}`,
        `~${PREFIX}*`,
        ...withoutPexpire.map((command) => `+${command}`),
      );
    } finally {
      admin.disconnect();
    }
  });
  afterAll(async () => {
    await server?.close();
  });

  const env = (extra: Record<string, string>) => ({
    BATON_BACKEND: 'redis',
    BATON_SESSION_TTL: '2s',
    BATON_LOCK_DELAY: '1s',
    BATON_REDIS_TIMEOUT: '2s',
    ...extra,
  });
  const url = (userinfo: string) => `redis://${userinfo}@127.0.0.1:${server.port}`;

  it('works as an ACL user limited to its key prefix and a few commands', async () => {
    const provider = await createLockProvider(
      env({ REDIS_URL: url(`worker:${WORKER_PASSWORD}`), BATON_REDIS_PREFIX: PREFIX }),
    );
    try {
      const session = await provider.openSession();
      const lease = await session.tryAcquire('task/1', { value: 'w1' });
      expect(lease).not.toBeNull();
      expect(await provider.getHolder('task/1')).toMatchObject({ sessionId: session.id, value: 'w1' });
      expect(await provider.list?.('task/')).toHaveLength(1);
      await lease?.publish('w2');
      expect(await lease?.release()).toBe(true);
      await session.destroy();
    } finally {
      await provider.close();
    }
  });

  it('takes the password from REDIS_PASSWORD (the default user)', async () => {
    const provider = await createLockProvider(
      env({ REDIS_URL: server.url, REDIS_PASSWORD: ADMIN_PASSWORD, BATON_REDIS_PREFIX: PREFIX }),
    );
    try {
      const session = await provider.openSession();
      expect(await session.tryAcquire('task/2')).not.toBeNull();
      await session.destroy();
    } finally {
      await provider.close();
    }
  });

  it.each([
    ['a wrong password in REDIS_URL', () => ({ REDIS_URL: url(`worker:${WORKER_PASSWORD}-wrong`) })],
    [
      'a wrong REDIS_PASSWORD',
      () => ({ REDIS_URL: server.url, REDIS_USERNAME: 'worker', REDIS_PASSWORD: `${ADMIN_PASSWORD}-wrong` }),
    ],
    ['no password at all', () => ({ REDIS_URL: server.url })],
  ])('%s is PERMISSION_DENIED naming the variables, and no password shows', async (_name, extra) => {
    const provider = await createLockProvider(env({ ...extra(), BATON_REDIS_PREFIX: PREFIX }));
    try {
      const error = await failure(provider.openSession());
      expect(error.code).toBe('PERMISSION_DENIED');
      expect(error.cause).toBeDefined();
      expect(error.message).toMatch(/REDIS_URL/);
      expect(error.message).toMatch(/REDIS_PASSWORD/);
      expect(everything(error)).not.toContain(WORKER_PASSWORD);
      expect(everything(error)).not.toContain(ADMIN_PASSWORD);
    } finally {
      await provider.close();
    }
  });

  it('a prefix outside the ACL user’s keys is PERMISSION_DENIED, naming what to grant', async () => {
    const provider = await createLockProvider(
      env({ REDIS_URL: url(`worker:${WORKER_PASSWORD}`), BATON_REDIS_PREFIX: 'elsewhere:' }),
    );
    try {
      const error = await failure(provider.openSession());
      expect(error.code).toBe('PERMISSION_DENIED');
      expect(error.message).toMatch(/~elsewhere:\*/);
      expect(everything(error)).not.toContain(WORKER_PASSWORD);
    } finally {
      await provider.close();
    }
  });

  it('a command missing from the ACL (one a script runs) is PERMISSION_DENIED, listing what to grant', async () => {
    const provider = await createLockProvider(
      env({ REDIS_URL: url(`narrow:${WORKER_PASSWORD}`), BATON_REDIS_PREFIX: PREFIX }),
    );
    try {
      const session = await provider.openSession();
      const error = await failure(session.tryAcquire('task/3'));
      expect(error.code).toBe('PERMISSION_DENIED');
      expect(error.message).toMatch(/\+pexpire/);
      expect(everything(error)).not.toContain(WORKER_PASSWORD);
    } finally {
      await provider.close();
    }
  });

  it('an unreachable server is UNAVAILABLE naming REDIS_URL, never "not acquired", and no password shows', async () => {
    const provider = await createLockProvider(
      env({ REDIS_URL: `redis://worker:${WORKER_PASSWORD}@127.0.0.1:1`, BATON_REDIS_TIMEOUT: '500ms' }),
    );
    try {
      const error = await failure(provider.openSession());
      expect(error.code).toBe('UNAVAILABLE');
      expect(error.message).toMatch(/REDIS_URL/);
      expect(error.message).toMatch(/ECONNREFUSED/);
      expect(everything(error)).not.toContain(WORKER_PASSWORD);
      // Later requests, queued while the client reconnects, say the same.
      const later = await failure(provider.getHolder('task/1'));
      expect(later.code).toBe('UNAVAILABLE');
      expect(later.message).toMatch(/ECONNREFUSED/);
    } finally {
      await provider.close();
    }
  });
});
