import { type EtcdServer, startEtcd } from '@baton/test-servers/etcd';
import { startFaultProxy } from '@baton/test-servers/fault-proxy';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdKeys } from '../src/index.js';
import { etcdServer, haveEtcd, makeProvider, uniquePrefix } from './harness.js';

async function rejection(
  promise: Promise<unknown>,
): Promise<{ code?: string; cause?: unknown; message: string }> {
  return promise.then(
    (value) => {
      throw new Error(`expected a rejection, got ${String(value)}`);
    },
    (error: { code?: string; cause?: unknown; message: string }) => error,
  );
}

async function eventually<T>(probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe.skipIf(!haveEtcd)('etcd failures', () => {
  const etcd = etcdServer();

  it('a stale release retried after a new holder took the key deletes nothing (etcd-io/etcd#22082)', async () => {
    const proxy = await startFaultProxy(etcd.server().endpoint);
    const prefix = uniquePrefix('stale-release');
    const settings = { prefix, ttlMs: 2_000, lockDelayMs: 0, requestTimeoutMs: 500 };
    const a = makeProvider(proxy.url, settings);
    const b = makeProvider(etcd.server().endpoint, settings);
    try {
      const [sa, sb] = [await a.openSession(), await b.openSession()];
      const lease = await sa.tryAcquire('job');
      expect(lease).not.toBeNull();
      // The release is applied, but its answer never arrives: the caller sees a transport error.
      proxy.setMode('drop-responses');
      const error = await rejection(lease?.release() ?? Promise.resolve());
      expect(['TIMEOUT', 'UNAVAILABLE']).toContain(error.code);
      const taken = await sb.tryAcquire('job');
      expect(taken).not.toBeNull();
      // A's session retries its unsettled release in the background once etcd answers again.
      proxy.setMode('pass');
      await new Promise((resolve) => setTimeout(resolve, 700));
      const holder = await b.getHolder('job');
      expect(holder).toMatchObject({ sessionId: sb.id, fence: taken?.fence });
      expect(taken?.signal.aborted).toBe(false);
    } finally {
      await Promise.all([a.close(), b.close()]);
      await proxy.close();
    }
  });

  it('an acquisition whose answer was lost does not leave the key held by the session', async () => {
    const proxy = await startFaultProxy(etcd.server().endpoint);
    const prefix = uniquePrefix('lost-answer');
    const a = makeProvider(proxy.url, { prefix, ttlMs: 5_000, lockDelayMs: 0, requestTimeoutMs: 500 });
    const observer = makeProvider(etcd.server().endpoint, { prefix });
    try {
      const session = await a.openSession();
      proxy.setMode('drop-responses');
      const error = await rejection(session.tryAcquire('job'));
      expect(['TIMEOUT', 'UNAVAILABLE']).toContain(error.code);
      expect(await observer.getHolder('job')).toMatchObject({ sessionId: session.id });
      proxy.setMode('pass');
      // Deleted in the background long before the session's lease (5 s) would have expired.
      await eventually(async () => ((await observer.getHolder('job')) === null ? true : undefined), 3_000);
      expect(await session.tryAcquire('job')).not.toBeNull();
    } finally {
      await Promise.all([a.close(), observer.close()]);
      await proxy.close();
    }
  });

  it('the cleanup of an unsettled acquisition never deletes a later lease of the same session', async () => {
    const proxy = await startFaultProxy(etcd.server().endpoint);
    const prefix = uniquePrefix('unsettled');
    const a = makeProvider(proxy.url, { prefix, ttlMs: 5_000, lockDelayMs: 0, requestTimeoutMs: 500 });
    const observer = makeProvider(etcd.server().endpoint, { prefix });
    try {
      const session = await a.openSession();
      // Refused before it reached etcd, but the session cannot know: the outcome is unsettled.
      proxy.setMode('reset');
      const error = await rejection(session.tryAcquire('job'));
      expect(['TIMEOUT', 'UNAVAILABLE']).toContain(error.code);
      proxy.setMode('pass');
      // The blocking acquire (the waiting line) settles the earlier attempt before it takes the key.
      const lease = await session.acquire('job', { timeoutMs: 5_000 });
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(await observer.getHolder('job')).toMatchObject({ sessionId: session.id, fence: lease.fence });
      expect(lease.signal.aborted).toBe(false);
    } finally {
      await Promise.all([a.close(), observer.close()]);
      await proxy.close();
    }
  });

  it('leaves no lock key behind after many acquisitions, releases and a crash', async () => {
    const prefix = uniquePrefix('no-leftovers');
    // A 2 s lease: on a loaded machine a 1 s one can expire between two steps, and the counts below are exact.
    const provider = makeProvider(etcd.server().endpoint, { prefix, ttlMs: 2_000, lockDelayMs: 1_000 });
    const raw = etcd.raw();
    const countKeys = async () => Number((await raw.getAll().prefix(prefix).count()) ?? 0);
    try {
      const sessions = [await provider.openSession(), await provider.openSession()];
      for (let round = 0; round < 60; round++) {
        const session = sessions[round % 2];
        const lease = await session?.tryAcquire(`task/${round}`, { value: `worker ${round % 2}` });
        expect(lease).not.toBeNull();
        if (round === 0) expect(await countKeys()).toBe(3); // the lock key, its lock-delay guard, its time
        await lease?.release();
      }
      expect(await countKeys()).toBe(0);
      // A blocking acquisition waits in line under a place key, which the acquisition itself deletes.
      const [first, second] = sessions;
      const held = await first?.tryAcquire('contended');
      const waiting = second?.acquire('contended');
      await eventually(async () => ((await countKeys()) === 4 ? true : undefined), 5_000);
      await held?.release();
      await (await waiting)?.release();
      expect(await countKeys()).toBe(0);
      const crashed = sessions[0];
      for (let i = 0; i < 5; i++) expect(await crashed?.tryAcquire(`crash/${i}`)).not.toBeNull();
      (crashed as unknown as { abandon(): void }).abandon();
      expect(await countKeys()).toBe(15);
      // The lock keys and their times go with the session lease, their guards a lock-delay later.
      await eventually(async () => ((await countKeys()) === 0 ? true : undefined), 10_000);
    } finally {
      await provider.close();
    }
    expect(await countKeys()).toBe(0);
  });

  it('fences rise across release, deletion and re-creation of the key', async () => {
    const prefix = uniquePrefix('fences');
    const provider = makeProvider(etcd.server().endpoint, { prefix, ttlMs: 1_000, lockDelayMs: 0 });
    try {
      const session = await provider.openSession();
      let last = 0;
      for (let i = 0; i < 5; i++) {
        const lease = await session.tryAcquire('job');
        expect(lease?.fence).toBeGreaterThan(last);
        last = lease?.fence ?? Number.POSITIVE_INFINITY;
        if (i === 2) await etcd.raw().delete().key(new EtcdKeys(prefix).lock('job'));
        await lease?.release();
      }
    } finally {
      await provider.close();
    }
  });
});

describe.skipIf(!haveEtcd)('etcd server killed', () => {
  let server: EtcdServer;
  beforeAll(async () => {
    server = await startEtcd();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('reports UNAVAILABLE (never "not acquired") while the server is down, and works once it is back', async () => {
    const prefix = uniquePrefix('killed');
    const provider = makeProvider(server.endpoint, {
      prefix,
      ttlMs: 2_000,
      lockDelayMs: 0,
      requestTimeoutMs: 1_000,
    });
    try {
      const session = await provider.openSession();
      const held = await session.tryAcquire('held');
      expect(held).not.toBeNull();
      await server.kill();
      const attempts = [
        () => session.tryAcquire('other'),
        () => provider.getHolder('held'),
        () => provider.openSession(),
      ];
      for (const attempt of attempts) {
        const error = await rejection(attempt());
        expect(['UNAVAILABLE', 'TIMEOUT']).toContain(error.code);
        expect(error.cause).toBeDefined();
      }
      const lost = await new Promise<{ code?: string }>((resolve) =>
        held?.signal.addEventListener('abort', () => resolve(held.signal.reason), { once: true }),
      );
      expect(lost.code).toBe('LEASE_LOST');
      await server.restart();
      const fresh = await eventually(async () => provider.openSession().catch(() => undefined), 10_000);
      expect(await fresh.tryAcquire('other')).not.toBeNull();
    } finally {
      await provider.close();
    }
  });
});
