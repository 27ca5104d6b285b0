import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type DynamoLockProviderOptions, FENCE_SPAN } from '../src/index.js';
import {
  createTable,
  deleteItem,
  readEpoch,
  readItem,
  setNumber,
  uniqueTable,
  until,
  useDynalite,
} from './helpers.js';

const fx = useDynalite('fences');
const TTL = 1_000;
const key = () => `fences/${randomUUID()}`;
const counter = (options: DynamoLockProviderOptions = {}) => fx.provider({ ttlMs: TTL, ...options });
const epoch = (options: DynamoLockProviderOptions = {}) =>
  fx.provider({ ttlMs: TTL, fenceMode: 'epoch', ...options });

describe('fencing tokens, counter mode (the default)', () => {
  it('a new key starts at 1 without any shared item; a release keeps the fence, the next acquisition adds one', async () => {
    const table = uniqueTable('counter');
    await createTable(fx.raw, table);
    const provider = counter({ table });
    expect(provider.fenceMode).toBe('counter');
    const a = await provider.openSession();
    const k = key();
    const first = await a.tryAcquire(k);
    expect(first!.fence).toBe(1);
    await first!.release();
    expect(await readItem(fx.raw, table, k)).toMatchObject({
      owner: undefined,
      fence: 1,
      fenceMax: undefined,
    });
    const second = await a.tryAcquire(k);
    expect(second!.fence).toBe(2);
    expect(await readEpoch(fx.raw, table)).toBeUndefined();
  });

  it('racing first users of a new key: one winner, every later fence higher', async () => {
    const sessions = await Promise.all(Array.from({ length: 6 }, () => counter().openSession()));
    const k = key();
    const leases = await Promise.all(sessions.map((s) => s.tryAcquire(k)));
    const winners = leases.filter(Boolean);
    expect(winners).toHaveLength(1);
    expect(winners[0]!.fence).toBe(1);
    await winners[0]!.release();
    const again = await sessions[1]!.tryAcquire(k);
    expect(again!.fence).toBe(2);
  });

  it('why lock items must never be deleted in this mode: a deleted item restarts its fences', async () => {
    const a = await counter().openSession();
    const k = key();
    for (let i = 0; i < 3; i++) await (await a.tryAcquire(k))!.release();
    const held = await a.tryAcquire(k);
    expect(held!.fence).toBe(4);
    await deleteItem(fx.raw, fx.table, k);
    a.heartbeatNow();
    const reason = await until(
      async () => (held!.signal.aborted ? (held!.signal.reason as Error) : undefined),
      TTL * 3,
      'the holder to notice',
    );
    expect(reason).toMatchObject({ code: 'LEASE_LOST' });
    expect(reason.message).toContain('deleted');
    expect((await a.tryAcquire(k))!.fence).toBe(1); // exclusivity holds, but the fence went back
  });
});

describe('fencing tokens, epoch mode', () => {
  it('every new key starts its own span above all spans handed out before; a release keeps the fence', async () => {
    const a = await epoch().openSession();
    const first = await a.tryAcquire(key());
    const k = key();
    const second = await a.tryAcquire(k);
    expect(second!.fence - first!.fence).toBeGreaterThanOrEqual(FENCE_SPAN);
    expect(second!.fence % FENCE_SPAN).toBe(1);
    await second!.release();
    expect(await readItem(fx.raw, fx.table, k)).toMatchObject({ owner: undefined, fence: second!.fence });
    expect((await a.tryAcquire(k))!.fence).toBe(second!.fence + 1);
  });

  it('deleting the item while it is held: the holder loses it, the next fence is still higher', async () => {
    const a = await epoch().openSession();
    const b = await epoch().openSession();
    const k = key();
    const lease = await a.tryAcquire(k);
    await deleteItem(fx.raw, fx.table, k);
    a.heartbeatNow();
    const reason = await until(
      async () => (lease!.signal.aborted ? (lease!.signal.reason as Error) : undefined),
      TTL * 3,
      'the holder to notice',
    );
    expect(reason).toMatchObject({ code: 'LEASE_LOST' });
    expect(reason.message).toContain('deleted');
    const next = await b.tryAcquire(k);
    expect(next!.fence).toBeGreaterThan(lease!.fence);
    // The same provider, which knew the key, notices the deletion too.
    await next!.release();
    await deleteItem(fx.raw, fx.table, k);
    expect((await b.tryAcquire(k))!.fence).toBeGreaterThan(next!.fence);
  });

  it('a used-up span moves to a new epoch on release-then-acquire and on takeover', async () => {
    const a = await epoch().openSession();
    const b = await epoch().openSession();
    const k = key();
    const first = await a.tryAcquire(k);
    await first!.release();
    const { fenceMax } = (await readItem(fx.raw, fx.table, k))!;
    await setNumber(fx.raw, fx.table, k, 'fence', fenceMax! - 1);

    const last = await a.tryAcquire(k);
    expect(last!.fence).toBe(fenceMax); // the last fence of the span
    await last!.release();
    const rolled = await a.tryAcquire(k);
    expect(rolled!.fence).toBeGreaterThan(fenceMax!);
    expect(rolled!.fence % FENCE_SPAN).toBe(1);

    // Same at takeover: the crashed holder's span is used up.
    const { fenceMax: max2 } = (await readItem(fx.raw, fx.table, k))!;
    await setNumber(fx.raw, fx.table, k, 'fence', max2!);
    a.abandon();
    const taken = await until(async () => (await b.tryAcquire(k)) ?? undefined, TTL * 5, 'takeover');
    expect(taken.fence).toBeGreaterThan(max2!);
  });

  it('racing first users of a new key: one winner, one epoch in the item, every later fence higher', async () => {
    const sessions = await Promise.all(Array.from({ length: 6 }, () => epoch().openSession()));
    const k = key();
    const leases = await Promise.all(sessions.map((s) => s.tryAcquire(k)));
    const winners = leases.filter(Boolean);
    expect(winners).toHaveLength(1);
    await winners[0]!.release();
    const again = await sessions[0]!.tryAcquire(k);
    expect(again!.fence).toBe(winners[0]!.fence + 1);
  });
});

describe('switching fence modes on one table', () => {
  it('fences keep increasing when a deployment switches from epoch to counter and back', async () => {
    const [e, c] = [await epoch().openSession(), await counter().openSession()];
    const k = key();
    const fences: number[] = [];
    const take = async (session: typeof e) => {
      const lease = await session.tryAcquire(k);
      fences.push(lease!.fence);
      await lease!.release();
    };
    await take(e);
    await take(c);
    // Counter mode ignores the span; epoch mode then moves the item to a new epoch above its fence.
    const { fenceMax } = (await readItem(fx.raw, fx.table, k))!;
    await setNumber(fx.raw, fx.table, k, 'fence', fenceMax!);
    await take(c);
    await take(e);
    await take(c);
    expect(fences[1]).toBe(fences[0]! + 1);
    expect(fences[2]).toBe(fenceMax! + 1);
    expect(fences[3]! % FENCE_SPAN).toBe(1);
    expect(fences[4]).toBe(fences[3]! + 1);
    for (let i = 1; i < fences.length; i++) expect(fences[i]).toBeGreaterThan(fences[i - 1]!);
  });

  it('a counter-mode item beyond the epoch counter: epoch mode starts above it and moves the counter past it', async () => {
    const [e, c] = [await epoch().openSession(), await counter().openSession()];
    const k = key();
    await (await c.tryAcquire(k))!.release();
    const far = (((await readEpoch(fx.raw, fx.table)) ?? 0) + 5) * FENCE_SPAN + 7; // ~5 M acquisitions
    await setNumber(fx.raw, fx.table, k, 'fence', far);
    const lease = await e.tryAcquire(k);
    expect(lease!.fence).toBeGreaterThan(far);
    expect(lease!.fence % FENCE_SPAN).toBe(1);
    expect((await readEpoch(fx.raw, fx.table))! * FENCE_SPAN).toBeGreaterThan(far);
    // From now on the key survives deletion: its re-created item starts above.
    await lease!.release();
    await deleteItem(fx.raw, fx.table, k);
    expect((await e.tryAcquire(k))!.fence).toBeGreaterThan(lease!.fence);
  });
});
