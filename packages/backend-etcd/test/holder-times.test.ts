import { describe, expect, it } from 'vitest';
import { EtcdKeys } from '../src/index.js';
import { etcdServer, haveEtcd, makeProvider, uniquePrefix } from './harness.js';

const etcd = etcdServer();

describe.skipIf(!haveEtcd)('etcd: holder times', () => {
  it('acquiredAt is the since key the acquiring txn wrote; the lease bound is LeaseTimeToLive + 1 s', async () => {
    const prefix = uniquePrefix('times');
    const provider = makeProvider(etcd.server().endpoint, { prefix, ttlMs: 2_000, lockDelayMs: 0 });
    try {
      const session = await provider.openSession();
      const before = Date.now();
      const lease = await session.tryAcquire('job');
      const after = Date.now();
      const keys = new EtcdKeys(prefix);
      const since = await etcd.raw().get(keys.since('job').toString()).exec();
      const kv = since.kvs[0]!;
      expect(Number(kv.mod_revision)).toBe(lease!.fence);
      const stamped = Number(kv.value.toString());
      expect(stamped).toBeGreaterThanOrEqual(before);
      expect(stamped).toBeLessThanOrEqual(after);
      const holder = await provider.getHolder('job');
      expect(holder).toMatchObject({ fence: lease!.fence, acquiredAt: stamped, acquiredAtSource: 'holder' });
      expect(holder).not.toHaveProperty('leaseRemainingMs');
      // etcd answers whole seconds rounded down: 0 or 1 s left of a 2 s lease renewed every second.
      expect([1_000, 2_000, 3_000]).toContain(holder!.leaseRemainingAtMostMs);
      await lease!.release();
      expect((await etcd.raw().get(keys.since('job').toString()).exec()).kvs).toHaveLength(0);
    } finally {
      await provider.close();
    }
  });

  it('a lock without a since key (an older baton), or with one written later, is reported without acquiredAt', async () => {
    const prefix = uniquePrefix('times-old');
    const provider = makeProvider(etcd.server().endpoint, { prefix, ttlMs: 2_000, lockDelayMs: 0 });
    try {
      const session = await provider.openSession();
      const keys = new EtcdKeys(prefix);
      const old = await session.tryAcquire('old');
      const rewritten = await session.tryAcquire('rewritten');
      await etcd.raw().delete().key(keys.since('old').toString()).exec();
      await etcd.raw().put(keys.since('rewritten').toString()).value('12345').exec();
      const holder = await provider.getHolder('old');
      expect(holder).toMatchObject({ sessionId: session.id, fence: old!.fence });
      expect(holder).not.toHaveProperty('acquiredAt');
      expect(holder!.leaseRemainingAtMostMs).toBeGreaterThan(0);
      expect(await provider.getHolder('rewritten')).toMatchObject({ fence: rewritten!.fence });
      expect(await provider.getHolder('rewritten')).not.toHaveProperty('acquiredAt');
      const listed = await provider.list();
      expect(listed.map((h) => [h.key, h.acquiredAt])).toEqual([
        ['old', undefined],
        ['rewritten', undefined],
      ]);
    } finally {
      await provider.close();
    }
  });
});
