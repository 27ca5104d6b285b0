import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { FENCE_SPAN } from '../src/index.js';
import { deleteItem, readItem, setNumber, until, useDynalite } from './helpers.js';

const fx = useDynalite('fences');
const TTL = 1_000;
const key = () => `fences/${randomUUID()}`;

describe('fencing tokens', () => {
  it('a release keeps the fence; the next acquisition adds exactly one', async () => {
    const a = await fx.provider({ ttlMs: TTL }).openSession();
    const k = key();
    const first = await a.tryAcquire(k);
    await first!.release();
    expect(await readItem(fx.raw, fx.table, k)).toMatchObject({ owner: undefined, fence: first!.fence });
    const second = await a.tryAcquire(k);
    expect(second!.fence).toBe(first!.fence + 1);
  });

  it('every new key starts its own span above all spans handed out before', async () => {
    const a = await fx.provider({ ttlMs: TTL }).openSession();
    const first = await a.tryAcquire(key());
    const second = await a.tryAcquire(key());
    expect(second!.fence - first!.fence).toBeGreaterThanOrEqual(FENCE_SPAN);
    expect(second!.fence % FENCE_SPAN).toBe(1);
  });

  it('deleting the item while it is held: the holder loses it, the next fence is still higher', async () => {
    const a = await fx.provider({ ttlMs: TTL }).openSession();
    const b = await fx.provider({ ttlMs: TTL }).openSession();
    const k = key();
    const lease = await a.tryAcquire(k);
    await deleteItem(fx.raw, fx.table, k);
    const reason = await until(
      async () => (lease!.signal.aborted ? (lease!.signal.reason as Error) : undefined),
      TTL * 3,
      'the holder to notice',
    );
    expect(reason).toMatchObject({ code: 'LEASE_LOST' });
    expect(reason.message).toContain('deleted');
    const next = await b.tryAcquire(k);
    expect(next!.fence).toBeGreaterThan(lease!.fence);
  });

  it('a used-up span moves to a new epoch on release-then-acquire and on takeover', async () => {
    const a = await fx.provider({ ttlMs: TTL }).openSession();
    const b = await fx.provider({ ttlMs: TTL }).openSession();
    const k = key();
    const first = await a.tryAcquire(k);
    await first!.release();
    const { fenceMax } = (await readItem(fx.raw, fx.table, k))!;
    await setNumber(fx.raw, fx.table, k, 'fence', fenceMax - 1);

    const last = await a.tryAcquire(k);
    expect(last!.fence).toBe(fenceMax); // the last fence of the span
    await last!.release();
    const rolled = await a.tryAcquire(k);
    expect(rolled!.fence).toBeGreaterThan(fenceMax);
    expect(rolled!.fence % FENCE_SPAN).toBe(1);

    // Same at takeover: the crashed holder's span is used up.
    const { fenceMax: max2 } = (await readItem(fx.raw, fx.table, k))!;
    await setNumber(fx.raw, fx.table, k, 'fence', max2);
    a.abandon();
    const taken = await until(async () => (await b.tryAcquire(k)) ?? undefined, TTL * 5, 'takeover');
    expect(taken.fence).toBeGreaterThan(max2);
  });

  it('racing first users of a new key: one winner, one epoch in the item, every later fence higher', async () => {
    const sessions = await Promise.all(
      Array.from({ length: 6 }, () => fx.provider({ ttlMs: TTL }).openSession()),
    );
    const k = key();
    const leases = await Promise.all(sessions.map((s) => s.tryAcquire(k)));
    const winners = leases.filter(Boolean);
    expect(winners).toHaveLength(1);
    await winners[0]!.release();
    const again = await sessions[0]!.tryAcquire(k);
    expect(again!.fence).toBe(winners[0]!.fence + 1);
  });
});
