import { randomUUID } from 'node:crypto';
import { ManualClock, skewedClock } from '@baton/core';
import { describe, expect, it } from 'vitest';
import type { DynamoLockSession } from '../src/index.js';
import { delay, noWallClock, readItem, until, useDynalite } from './helpers.js';

const fx = useDynalite('takeover');
const TTL = 800;
const MARGIN = Math.ceil(TTL / 10);

const key = () => `takeover/${randomUUID()}`;

/** Polls tryAcquire; returns the lease plus when the first refusal and the success happened. */
async function pollTakeover(session: DynamoLockSession, k: string, timeoutMs = 10_000) {
  let firstRefusal: number | undefined;
  const lease = await until(
    async () => {
      const before = performance.now();
      const got = await session.tryAcquire(k);
      if (!got) firstRefusal ??= before;
      return got ?? undefined;
    },
    timeoutMs,
    'takeover',
  );
  return { lease, firstRefusal, acquiredAt: performance.now() };
}

describe('takeover without trusting clocks', () => {
  it('a contender whose wall clock is hours ahead still waits a full lease duration (+ margin)', async () => {
    const holderProvider = fx.provider({ ttlMs: TTL, clock: skewedClock(-3 * 3_600_000, noWallClock) });
    const contenderProvider = fx.provider({ ttlMs: TTL, clock: skewedClock(5 * 3_600_000, noWallClock) });
    const a = await holderProvider.openSession();
    const b = await contenderProvider.openSession();
    const k = key();
    const held = await a.tryAcquire(k);
    expect(held).not.toBeNull();
    a.abandon();

    const { lease, firstRefusal, acquiredAt } = await pollTakeover(b, k);
    expect(firstRefusal).toBeDefined();
    expect(acquiredAt - firstRefusal!).toBeGreaterThanOrEqual(TTL + MARGIN);
    // The crashed holder stopped trusting its lease before anyone else was granted it.
    expect(held!.signal.aborted).toBe(true);
    expect((held!.signal.reason as { code: string }).code).toBe('LEASE_LOST');
    expect(lease.fence).toBeGreaterThan(held!.fence);
    // Reading wall time throws on these clocks, so reaching this line proves expiry never looked at it.
  });

  it('a live holder is never taken over, however long a contender keeps trying', async () => {
    const a = await fx.provider({ ttlMs: TTL }).openSession();
    const b = await fx.provider({ ttlMs: TTL }).openSession();
    const k = key();
    const lease = await a.tryAcquire(k);
    expect(lease).not.toBeNull();
    const until = performance.now() + TTL * 3;
    while (performance.now() < until) {
      expect(await b.tryAcquire(k)).toBeNull();
      await delay(25);
    }
    expect(lease!.signal.aborted).toBe(false);
  });

  it('a paused holder (frozen clock) loses the key; its late publish and release are rejected', async () => {
    const frozen = new ManualClock();
    const a = await fx.provider({ ttlMs: TTL, clock: frozen }).openSession();
    const b = await fx.provider({ ttlMs: TTL }).openSession();
    const k = key();
    const stale = await a.tryAcquire(k, { value: 'a' });
    expect(stale).not.toBeNull();

    // A's process is paused: none of its timers run, it still believes it holds the key.
    const { lease: fresh } = await pollTakeover(b, k);
    expect(fresh.fence).toBeGreaterThan(stale!.fence);
    expect(stale!.signal.aborted).toBe(false);

    await expect(stale!.publish('late write')).rejects.toMatchObject({ code: 'LEASE_LOST' });
    expect(stale!.signal.aborted).toBe(true);
    expect(await stale!.release()).toBe(false);
    const item = await readItem(fx.raw, fx.table, k);
    expect(item).toMatchObject({ owner: b.id, fence: fresh.fence, value: undefined });
    expect(fresh.signal.aborted).toBe(false);
  });

  it("a paused holder's late heartbeat is rejected by the condition and ends its lease", async () => {
    const frozen = new ManualClock();
    const a = await fx.provider({ ttlMs: TTL, clock: frozen }).openSession();
    const b = await fx.provider({ ttlMs: TTL }).openSession();
    const k = key();
    const stale = await a.tryAcquire(k);
    const { lease: fresh } = await pollTakeover(b, k);

    // A wakes up and its heartbeat timer fires: a third of its lease has passed on its own clock.
    await frozen.advance(a.intervalMs);
    const reason = await until(
      async () => (stale!.signal.aborted ? (stale!.signal.reason as Error) : undefined),
      5_000,
      'the stale lease to end',
    );
    expect(reason).toMatchObject({ code: 'LEASE_LOST' });
    expect(reason.message).toContain(`session ${b.id} took it over`);
    expect(a.signal.aborted).toBe(false);
    expect(await readItem(fx.raw, fx.table, k)).toMatchObject({ owner: b.id, fence: fresh.fence });
    expect(fresh.signal.aborted).toBe(false);
  });

  it('a holder whose heartbeats stop gives up within one lease duration of its last renewal', async () => {
    const a = await fx.provider({ ttlMs: TTL }).openSession();
    const lease = await a.tryAcquire(key());
    await delay(a.intervalMs * 1.5); // at least one renewal went through
    a.abandon();
    const stoppedAt = performance.now();
    await until(async () => (lease!.signal.aborted ? true : undefined), TTL * 3, 'lease loss');
    expect(performance.now() - stoppedAt).toBeLessThanOrEqual(TTL + 100);
  });

  it('lock-delay is added to the observation window, and getHolder reports the holder gone after the lease', async () => {
    const lockDelayMs = 300;
    const a = await fx.provider({ ttlMs: TTL, lockDelayMs }).openSession();
    const observer = fx.provider({ ttlMs: TTL });
    const b = await observer.openSession();
    const k = key();
    expect(await a.tryAcquire(k)).not.toBeNull();
    expect((await readItem(fx.raw, fx.table, k))?.owner).toBe(a.id);
    a.abandon();

    const firstLook = performance.now();
    expect((await observer.getHolder(k))?.sessionId).toBe(a.id);
    await until(
      async () => ((await observer.getHolder(k)) === null ? true : undefined),
      5_000,
      'holder gone',
    );
    const goneAfter = performance.now() - firstLook;
    expect(goneAfter).toBeGreaterThanOrEqual(TTL + MARGIN);

    const { acquiredAt } = await pollTakeover(b, k);
    expect(acquiredAt - firstLook).toBeGreaterThanOrEqual(TTL + MARGIN + lockDelayMs);
  });

  it('takeover needs the very record version the contender watched: a renewal restarts the wait', async () => {
    const paused = new ManualClock();
    const a = await fx.provider({ ttlMs: TTL, clock: paused }).openSession();
    const b = await fx.provider({ ttlMs: TTL }).openSession();
    const k = key();
    const lease = await a.tryAcquire(k);
    const firstVersion = (await readItem(fx.raw, fx.table, k))?.rvn;
    expect(await b.tryAcquire(k)).toBeNull(); // B starts watching the first version
    await delay(TTL * 0.75);

    await paused.advance(a.intervalMs); // one more heartbeat from A: a new version
    await until(
      async () => ((await readItem(fx.raw, fx.table, k))?.rvn !== firstVersion ? true : undefined),
      2_000,
      'the heartbeat to land',
    );
    const renewedAt = performance.now();
    const { lease: taken, acquiredAt } = await pollTakeover(b, k);
    expect(acquiredAt - renewedAt).toBeGreaterThanOrEqual(TTL + MARGIN);
    expect(taken.fence).toBeGreaterThan(lease!.fence);
  });
});
