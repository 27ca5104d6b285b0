import { randomUUID } from 'node:crypto';
import type { Lease } from '@baton/core';
import { describe, expect, it } from 'vitest';
import { delay, readItem, removePlace, until, useDynalite } from './helpers.js';

const fx = useDynalite('line');
const TTL = 800;
const MARGIN = Math.ceil(TTL / 10);
const key = () => `line/${randomUUID()}`;

const inLine = (k: string, sessionId: string) =>
  until(
    async () => ((await readItem(fx.raw, fx.table, k))?.waiters.includes(sessionId) ? true : undefined),
    5_000,
    `${sessionId} in line`,
  );

describe('the line of waiters on a DynamoDB lock item', () => {
  it('a crashed waiter is passed only after its place stayed unchanged for its lease (+ margin), then removed', async () => {
    const a = await fx.provider({ ttlMs: 60_000 }).openSession();
    const k = key();
    const held = await a.tryAcquire(k);
    const crashedSession = await fx.provider({ ttlMs: TTL }).openSession();
    void crashedSession.acquire(k).catch(() => undefined);
    await inLine(k, crashedSession.id);
    const c = await fx.provider({ ttlMs: TTL }).openSession();
    const waiting = c.acquire(k);
    await inLine(k, c.id);
    crashedSession.abandon();
    const crashedAt = performance.now();
    await held!.release();
    const lease = await waiting;
    const passedAfter = performance.now() - crashedAt;
    // The crashed waiter's last refresh came at most one heartbeat period before the crash.
    expect(passedAfter).toBeGreaterThanOrEqual(TTL + MARGIN - crashedSession.intervalMs);
    expect(lease.fence).toBeGreaterThan(held!.fence);
    const item = await readItem(fx.raw, fx.table, k);
    expect(item?.waiters).toEqual([]);
    expect(item?.waiting).toBe(0);
  });

  it('a live waiter is never passed, however long it waits', async () => {
    const a = await fx.provider({ ttlMs: TTL }).openSession();
    const k = key();
    const held = await a.tryAcquire(k);
    const b = await fx.provider({ ttlMs: TTL }).openSession();
    const first = b.acquire(k);
    await inLine(k, b.id);
    const c = await fx.provider({ ttlMs: TTL }).openSession();
    let cGot: Lease | undefined;
    const second = c.acquire(k).then((lease) => {
      cGot = lease;
      return lease;
    });
    await inLine(k, c.id);
    await delay(TTL * 3);
    expect((await readItem(fx.raw, fx.table, k))?.waiters).toEqual([b.id, c.id]);
    await held!.release();
    const bLease = await first;
    expect(cGot).toBeUndefined();
    await bLease.release();
    expect((await second).fence).toBeGreaterThan(bLease.fence);
  });

  it('a waiter whose place was removed (presumed dead while it was paused) lines up again at the back', async () => {
    const a = await fx.provider({ ttlMs: 60_000 }).openSession();
    const k = key();
    const held = await a.tryAcquire(k);
    const b = await fx.provider({ ttlMs: TTL }).openSession();
    const order: string[] = [];
    const served = (name: string) => async (lease: Lease) => {
      order.push(name);
      await lease.release();
    };
    const bWait = b.acquire(k).then(served('b'));
    await inLine(k, b.id);
    const c = await fx.provider({ ttlMs: TTL }).openSession();
    const cWait = c.acquire(k).then(served('c'));
    await inLine(k, c.id);
    const bPlace = (await readItem(fx.raw, fx.table, k))!.places[0]!;
    await removePlace(fx.raw, fx.table, k, bPlace);
    await until(
      async () => {
        const item = await readItem(fx.raw, fx.table, k);
        return item?.waiters.join(' ') === `${c.id} ${b.id}` ? true : undefined;
      },
      5_000,
      'b back in line, behind c',
    );
    await held!.release();
    await Promise.all([bWait, cWait]);
    expect(order).toEqual(['c', 'b']);
    expect((await readItem(fx.raw, fx.table, k))?.waiting).toBe(0);
  });

  it('the count of places stays exact through grants, aborts and timeouts, so a free key takes one request again', async () => {
    const a = await fx.provider({ ttlMs: TTL }).openSession();
    const k = key();
    const held = await a.tryAcquire(k);
    const sessions = await Promise.all(
      Array.from({ length: 6 }, () => fx.provider({ ttlMs: TTL }).openSession()),
    );
    const stop = new AbortController();
    const waits = sessions.map((s, i) =>
      i % 3 === 0
        ? s.acquire(k, { signal: stop.signal }).then(
            (lease) => lease.release(),
            () => undefined,
          )
        : i % 3 === 1
          ? s.acquire(k, { timeoutMs: 300 }).then(
              (lease) => lease.release(),
              () => undefined,
            )
          : s.acquire(k).then((lease) => lease.release()),
    );
    await delay(400);
    stop.abort();
    await held!.release();
    await Promise.all(waits);
    const item = await readItem(fx.raw, fx.table, k);
    expect(item?.waiters).toEqual([]);
    expect(item?.waiting).toBe(0);
    expect(item?.owner).toBeUndefined();
  });
});
