import { randomUUID } from 'node:crypto';
import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { type Clock, systemClock } from '@baton/core';
import { describe, expect, it } from 'vitest';
import { type DynamoLockSession, EXPIRY_SLACK_S, LOCK_PREFIX } from '../src/index.js';
import { readItem, until, useDynalite } from './helpers.js';

const fx = useDynalite('nokeys');
const TTL = 1_000;

/** Every lock item of `table` with its TTL attribute (Unix seconds), read straight from dynalite. */
async function lockItems(table: string): Promise<Array<{ key: string; expiresAt: number | undefined }>> {
  const items: Array<{ key: string; expiresAt: number | undefined }> = [];
  let start: Record<string, never> | undefined;
  do {
    const page = await fx.raw.send(
      new ScanCommand({ TableName: table, ConsistentRead: true, ExclusiveStartKey: start }),
    );
    for (const item of page.Items ?? []) {
      const key = item.key?.S ?? '';
      if (!key.startsWith(LOCK_PREFIX)) continue;
      const at = item.expiresAt?.N;
      items.push({
        key: key.slice(LOCK_PREFIX.length),
        expiresAt: at === undefined ? undefined : Number(at),
      });
    }
    start = page.LastEvaluatedKey as Record<string, never> | undefined;
  } while (start);
  return items;
}

/**
 * Lock items DynamoDB's TTL would not delete at wall time `nowMs`: dynalite does not expire items, so the test
 * counts what the real service keeps (it deletes an item within about two days after its `expiresAt`).
 */
async function liveItems(table: string, nowMs: number): Promise<string[]> {
  return (await lockItems(table))
    .filter((item) => item.expiresAt === undefined || item.expiresAt * 1000 > nowMs)
    .map((item) => item.key)
    .sort();
}

/** A wall clock the test moves forward; the backend reads it only for the TTL attribute. */
function movableWallClock(): Clock & { advance(ms: number): void } {
  let shift = 0;
  return {
    ...systemClock,
    wallNow: () => Date.now() + shift,
    advance(ms: number) {
      shift += ms;
    },
  };
}

// Issue 15: in `counter` mode the table keeps an item per key ever locked. `epoch` mode deletes a released
// key in its release request, keeps an item only while it is held, on hold (lockAtLeastFor) or waited for,
// and gives every kept item a TTL: what is left is bounded by what is in use, whatever the number of tasks.
describe('no lock key left behind (DynamoDB, epoch fence mode)', () => {
  it('after 200 task locks, a crash and a lockAtLeastFor window, only the held key stays live', {
    timeout: 60_000,
  }, async () => {
    const clock = movableWallClock();
    const provider = fx.provider({ fenceMode: 'epoch', ttlMs: TTL, lockDelayMs: 200, clock });
    const table = fx.epochTable;
    const workers = await Promise.all([1, 2, 3, 4].map(() => provider.openSession()));
    const prefix = `nokeys/${randomUUID()}`;
    const fences = new Map<string, number>();
    await Promise.all(
      workers.map(async (session, w) => {
        for (let i = 0; i < 50; i++) {
          const key = `${prefix}/task/${w * 50 + i}`;
          const lease = await session.tryAcquire(key);
          expect(lease).not.toBeNull();
          fences.set(key, lease!.fence);
          expect(await lease!.release()).toBe(true);
        }
      }),
    );
    expect(await lockItems(table)).toEqual([]);

    const crashed = await provider.openSession();
    for (let i = 0; i < 5; i++) expect(await crashed.tryAcquire(`${prefix}/crashed/${i}`)).not.toBeNull();
    const longTask = await workers[0]!.tryAcquire(`${prefix}/long/1`, { lockAtLeastForMs: 60_000 });
    const stillHeld = await workers[1]!.tryAcquire(`${prefix}/held/1`);
    expect(await liveItems(table, Date.now())).toHaveLength(7);

    (crashed as DynamoLockSession).abandon();
    expect(await longTask!.release()).toBe(true);
    // A day and two minutes later (as DynamoDB's TTL sees it), only the key a live session still renews is kept.
    clock.advance((EXPIRY_SLACK_S + 120) * 1000);
    const before = (await readItem(fx.raw, table, `${prefix}/held/1`))!.rvn;
    await until(
      async () => ((await readItem(fx.raw, table, `${prefix}/held/1`))!.rvn !== before ? true : undefined),
      TTL * 5,
      'a heartbeat of the live holder',
    );
    expect(await liveItems(table, clock.wallNow())).toEqual([`${prefix}/held/1`]);

    // Until DynamoDB deletes them, the backend's own rule treats the crashed holder's items as free once
    // their record stayed unchanged for the lease, margin and lock-delay; taking and releasing one deletes it.
    const taker = await provider.openSession();
    const taken = await until(
      async () => (await taker.tryAcquire(`${prefix}/crashed/0`)) ?? undefined,
      TTL * 5,
      "the crashed holder's key",
    );
    expect(await taken.release()).toBe(true);
    expect(await readItem(fx.raw, table, `${prefix}/crashed/0`)).toBeNull();
    // The lockAtLeastFor window still holds, whatever the TTL attribute says.
    expect(await taker.tryAcquire(`${prefix}/long/1`)).toBeNull();

    expect(await stillHeld!.release()).toBe(true);
    expect(await liveItems(table, clock.wallNow())).toEqual([]);
    expect((await lockItems(table)).map((item) => item.key).sort()).toEqual(
      [1, 2, 3, 4]
        .map((i) => `${prefix}/crashed/${i}`)
        .concat(`${prefix}/long/1`)
        .sort(),
    );
    // Fences of a deleted key keep rising when it is used again.
    const again = await workers[2]!.tryAcquire(`${prefix}/task/7`);
    expect(again!.fence).toBeGreaterThan(fences.get(`${prefix}/task/7`)!);
  });

  it('a release whose DeleteItem answer is lost resolves true, also when the key was created again meanwhile', async () => {
    const proxy = await fx.proxy();
    const owner = await fx
      .provider({ fenceMode: 'epoch', ttlMs: 10_000, endpoint: proxy.endpoint })
      .openSession();
    const other = await fx.provider({ fenceMode: 'epoch', ttlMs: 10_000 }).openSession();
    const key = `nokeys/${randomUUID()}`;

    const lease = await owner.tryAcquire(key);
    proxy.inject('apply-then-reset', { operation: 'DeleteItem' });
    expect(await lease!.release()).toBe(true);
    expect(await readItem(fx.raw, fx.epochTable, key)).toBeNull();

    // Again, and before the retry of the lost delete arrives, another session creates the key anew.
    const second = await owner.tryAcquire(key);
    let created!: () => void;
    const recreated = new Promise<void>((resolve) => {
      created = resolve;
    });
    proxy.inject('apply-then-reset', { operation: 'DeleteItem' });
    proxy.inject('delay-response', { operation: 'DeleteItem', until: recreated });
    const releasing = second!.release();
    await until(
      async () => ((await readItem(fx.raw, fx.epochTable, key)) === null ? true : undefined),
      10_000,
      'the first delete to be applied',
    );
    const next = await other.tryAcquire(key);
    expect(next!.fence).toBeGreaterThan(second!.fence);
    created();
    expect(await releasing).toBe(true);
    expect((await readItem(fx.raw, fx.epochTable, key))?.owner).toBe(other.id);
    expect(next!.signal.aborted).toBe(false);
  });

  it('counter mode keeps an item per key ever locked (the reason to choose epoch mode)', async () => {
    const session = await fx.provider({ ttlMs: TTL }).openSession();
    const prefix = `nokeys/${randomUUID()}`;
    for (let i = 0; i < 20; i++) {
      const lease = await session.tryAcquire(`${prefix}/${i}`);
      expect(await lease!.release()).toBe(true);
    }
    const left = (await lockItems(fx.table)).filter((item) => item.key.startsWith(prefix));
    expect(left).toHaveLength(20);
    expect(left.every((item) => item.expiresAt === undefined)).toBe(true);
  });
});
