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
  it('every new key starts its own span above all spans handed out before; a release deletes the item, the next fence is higher', async () => {
    const a = await epoch().openSession();
    const first = await a.tryAcquire(key());
    const k = key();
    const second = await a.tryAcquire(k);
    expect(second!.fence - first!.fence).toBeGreaterThanOrEqual(FENCE_SPAN);
    expect(second!.fence % FENCE_SPAN).toBe(1);
    expect(await second!.release()).toBe(true);
    expect(await readItem(fx.raw, fx.epochTable, k)).toBeNull();
    expect((await a.tryAcquire(k))!.fence).toBeGreaterThan(second!.fence);
  });

  it('deleting the item while it is held: the holder loses it, the next fence is still higher', async () => {
    const a = await epoch().openSession();
    const b = await epoch().openSession();
    const k = key();
    const lease = await a.tryAcquire(k);
    await deleteItem(fx.raw, fx.epochTable, k);
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
    expect(await next!.release()).toBe(true);
    expect((await b.tryAcquire(k))!.fence).toBeGreaterThan(next!.fence);
  });

  it('the epoch is drawn once the item exists: a creation whose answer comes late still gets a higher fence than an incarnation created and deleted meanwhile', async () => {
    const proxy = await fx.proxy();
    const slow = await epoch({ endpoint: proxy.endpoint }).openSession();
    const fast = await epoch().openSession();
    const k = key();
    let done!: () => void;
    const fastFinished = new Promise<void>((resolve) => {
      done = resolve;
    });
    // The slow provider's first write of the acquisition is applied at once, its answer held back until a
    // whole other incarnation of the key (create, grant, release = delete) has come and gone.
    proxy.inject('delay-response', { operation: 'UpdateItem', until: fastFinished });
    const epochBefore = (await readEpoch(fx.raw, fx.epochTable)) ?? 0;
    const slowLease = slow.tryAcquire(k);
    await until(
      async () =>
        (await readItem(fx.raw, fx.epochTable, k)) !== null ||
        ((await readEpoch(fx.raw, fx.epochTable)) ?? 0) > epochBefore ||
        undefined,
      10_000,
      "the slow acquisition's first write to be applied",
    );
    const fastLease = await fast.tryAcquire(k);
    expect(fastLease).not.toBeNull();
    expect(await fastLease!.release()).toBe(true);
    expect(await readItem(fx.raw, fx.epochTable, k)).toBeNull();
    done();
    const late = await slowLease;
    expect(late).not.toBeNull();
    expect(late!.fence).toBeGreaterThan(fastLease!.fence);
  });

  it('a used-up span moves to a new epoch on the next grant and on takeover', async () => {
    const provider = epoch();
    const a = await provider.openSession();
    const b = await epoch().openSession();
    const k = key();
    await a.tryAcquire(k);
    const { fenceMax } = (await readItem(fx.raw, fx.epochTable, k))!;
    await setNumber(fx.raw, fx.epochTable, k, 'fence', fenceMax! - 1);
    // A force-release keeps the item (a release would delete it), so the next grant stays in its span.
    expect(await provider.forceRelease(k)).toBe(true);
    const last = await b.tryAcquire(k);
    expect(last!.fence).toBe(fenceMax); // the last fence of the span
    expect(await provider.forceRelease(k)).toBe(true);
    const d = await epoch().openSession();
    const rolled = await d.tryAcquire(k);
    expect(rolled!.fence).toBeGreaterThan(fenceMax!);
    expect(rolled!.fence % FENCE_SPAN).toBe(1);

    // Same at takeover: the crashed holder's span is used up.
    const { fenceMax: max2 } = (await readItem(fx.raw, fx.epochTable, k))!;
    await setNumber(fx.raw, fx.epochTable, k, 'fence', max2!);
    d.abandon();
    const c = await epoch().openSession();
    const taken = await until(async () => (await c.tryAcquire(k)) ?? undefined, TTL * 5, 'takeover');
    expect(taken.fence).toBeGreaterThan(max2!);
  });

  it('racing first users of a new key: one winner, every later fence higher', async () => {
    const sessions = await Promise.all(Array.from({ length: 6 }, () => epoch().openSession()));
    const k = key();
    const leases = await Promise.all(sessions.map((s) => s.tryAcquire(k)));
    const winners = leases.filter(Boolean);
    expect(winners).toHaveLength(1);
    await winners[0]!.release();
    const again = await sessions[0]!.tryAcquire(k);
    expect(again!.fence).toBeGreaterThan(winners[0]!.fence);
  });
});

describe('mixing fence modes on one table', () => {
  it('a counter-mode provider refuses a table an epoch-mode provider has used (it deletes items), naming the setting', async () => {
    const table = uniqueTable('mixed');
    await createTable(fx.raw, table);
    const e = await epoch({ table }).openSession();
    const k = key();
    await (await e.tryAcquire(k))!.release();
    const refused = await counter({ table })
      .openSession()
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    expect(refused).toMatchObject({ code: 'CONFIG_INVALID', field: 'BATON_DYNAMODB_FENCE_MODE (fenceMode)' });
    expect((refused as Error).message).toContain('epoch');
    // Epoch-mode providers go on; the key's fences never went back.
    expect((await e.tryAcquire(k))!.fence).toBeGreaterThan(FENCE_SPAN);
  });

  it('counter to epoch: items counter mode created move to an epoch above their fence, and the counter past it', async () => {
    const table = uniqueTable('switch');
    await createTable(fx.raw, table);
    const c = await counter({ table }).openSession();
    const k = key();
    await (await c.tryAcquire(k))!.release();
    const far = 5 * FENCE_SPAN + 7; // ~5 M acquisitions
    await setNumber(fx.raw, table, k, 'fence', far);
    const e = await epoch({ table }).openSession();
    const lease = await e.tryAcquire(k);
    expect(lease!.fence).toBeGreaterThan(far);
    expect(lease!.fence % FENCE_SPAN).toBe(1);
    expect((await readEpoch(fx.raw, table))! * FENCE_SPAN).toBeGreaterThan(far);
    // From now on the key survives deletion: its re-created item starts above.
    expect(await lease!.release()).toBe(true);
    expect(await readItem(fx.raw, table, k)).toBeNull();
    expect((await e.tryAcquire(k))!.fence).toBeGreaterThan(lease!.fence);
  });
});
