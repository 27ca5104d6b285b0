import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { DynamoLockProviderOptions } from '../src/index.js';
import { countRequests, delay, readItem, until, useDynalite } from './helpers.js';

const fx = useDynalite('trips');
const TTL = 900;
const key = () => `trips/${randomUUID()}`;

function measured(options: DynamoLockProviderOptions = {}) {
  const provider = fx.provider({ ttlMs: TTL, ...options });
  return { provider, requests: countRequests(provider.client) };
}

/** Requests by operation, as a plain object for readable assertions. */
function snapshot(counts: Map<string, number>): Record<string, number> {
  return Object.fromEntries([...counts.entries()].sort());
}

describe('round trips per operation (counted by an SDK middleware)', () => {
  it('counter mode: acquire of a new key = 1 UpdateItem, of a released key = 1, release = 1', async () => {
    const { provider, requests } = measured({ ttlMs: 60_000 });
    const a = await provider.openSession();
    const k = key();
    requests.reset();
    const first = await a.tryAcquire(k);
    expect(first).not.toBeNull();
    expect(snapshot(requests.counts)).toEqual({ UpdateItem: 1 });

    requests.reset();
    expect(await first!.release()).toBe(true);
    expect(snapshot(requests.counts)).toEqual({ UpdateItem: 1 });

    // A released key, also when this provider has never seen it.
    const other = measured({ ttlMs: 60_000 });
    const b = await other.provider.openSession();
    other.requests.reset();
    const lease = await b.tryAcquire(k);
    expect(lease?.fence).toBe(first!.fence + 1);
    expect(snapshot(other.requests.counts)).toEqual({ UpdateItem: 1 });
  });

  it('epoch mode: a new key = 3 UpdateItems (create, fence epoch, grant); release = 1 DeleteItem; the deleted key is new again', async () => {
    const { provider, requests } = measured({ ttlMs: 60_000, fenceMode: 'epoch' });
    const a = await provider.openSession();
    const k = key();
    requests.reset();
    const first = await a.tryAcquire(k);
    expect(first).not.toBeNull();
    expect(snapshot(requests.counts)).toEqual({ UpdateItem: 3 });

    requests.reset();
    expect(await first!.release()).toBe(true);
    expect(snapshot(requests.counts)).toEqual({ DeleteItem: 1 });
    expect(await readItem(fx.raw, fx.epochTable, k)).toBeNull();

    requests.reset();
    const lease = await a.tryAcquire(k);
    expect(lease?.fence).toBeGreaterThan(first!.fence);
    expect(snapshot(requests.counts)).toEqual({ UpdateItem: 3 });
  });

  it('epoch mode, a key another provider holds: 3 requests (create refused, grant refused, read), then 1 read per poll; a kept free item: 2', async () => {
    const creatorProvider = measured({ ttlMs: 60_000, fenceMode: 'epoch' }).provider;
    const creator = await creatorProvider.openSession();
    const [free, held] = [key(), key()];
    expect(await creator.tryAcquire(free)).not.toBeNull();
    expect(await creatorProvider.forceRelease(free)).toBe(true); // keeps the item, unlike a release
    expect(await creator.tryAcquire(held)).not.toBeNull();

    const { provider, requests } = measured({ ttlMs: 60_000, fenceMode: 'epoch' });
    const b = await provider.openSession();
    requests.reset();
    expect(await b.tryAcquire(held)).toBeNull();
    expect(snapshot(requests.counts)).toEqual({ GetItem: 1, UpdateItem: 2 });
    requests.reset();
    expect(await b.tryAcquire(held)).toBeNull();
    expect(snapshot(requests.counts)).toEqual({ GetItem: 1 });

    requests.reset();
    expect(await b.tryAcquire(free)).not.toBeNull(); // create refused, grant
    expect(snapshot(requests.counts)).toEqual({ UpdateItem: 2 });
  });

  it('epoch mode: a release whose key has a waiter keeps the item (1 DeleteItem refused, 1 GetItem, 1 UpdateItem)', async () => {
    const { provider, requests } = measured({ ttlMs: 60_000, fenceMode: 'epoch' });
    const a = await provider.openSession();
    const b = await measured({ ttlMs: 60_000, fenceMode: 'epoch' }).provider.openSession();
    const k = key();
    const lease = await a.tryAcquire(k);
    const waiting = b.acquire(k, { timeoutMs: 30_000 });
    await until(
      async () => ((await readItem(fx.raw, fx.epochTable, k))?.waiting === 1 ? true : undefined),
      10_000,
      'the waiter to line up',
    );
    requests.reset();
    expect(await lease!.release()).toBe(true);
    expect(snapshot(requests.counts)).toEqual({ DeleteItem: 1, GetItem: 1, UpdateItem: 1 });
    const next = await waiting;
    expect(next.fence).toBe(lease!.fence + 1);
    expect(await next.release()).toBe(true);
    expect(await readItem(fx.raw, fx.epochTable, k)).toBeNull();
  });

  it('openSession: counter mode reads the fence-mode mark (1 GetItem), epoch mode writes it once per provider (1 UpdateItem), then reads', async () => {
    for (const fenceMode of ['counter', 'epoch'] as const) {
      const { provider, requests } = measured({ ttlMs: 60_000, fenceMode });
      requests.reset();
      await provider.openSession();
      expect(snapshot(requests.counts)).toEqual(
        fenceMode === 'counter' ? { DescribeTable: 1, GetItem: 1 } : { DescribeTable: 1, UpdateItem: 1 },
      );
      requests.reset();
      await provider.openSession();
      expect(snapshot(requests.counts)).toEqual({ GetItem: 1 });
    }
  });

  it('publish = 1, getHolder = 1, forceRelease = 1', async () => {
    const { provider, requests } = measured({ ttlMs: 60_000 });
    const a = await provider.openSession();
    const k = key();
    const lease = await a.tryAcquire(k);
    requests.reset();
    await lease!.publish('v2');
    expect(snapshot(requests.counts)).toEqual({ UpdateItem: 1 });
    requests.reset();
    expect((await provider.getHolder(k))?.value).toBe('v2');
    expect(snapshot(requests.counts)).toEqual({ GetItem: 1 });
    requests.reset();
    expect(await provider.forceRelease(k)).toBe(true);
    expect(snapshot(requests.counts)).toEqual({ UpdateItem: 1 });
  });

  it('contention: the first refusal costs 2 requests, each later poll 1 read, the takeover 2', async () => {
    const holder = measured({ ttlMs: 600 });
    const contender = measured({ ttlMs: 60_000 }); // no heartbeat of its own during the test
    const a = await holder.provider.openSession();
    const b = await contender.provider.openSession();
    const k = key();
    await a.tryAcquire(k);
    a.abandon();

    contender.requests.reset();
    expect(await b.tryAcquire(k)).toBeNull();
    expect(snapshot(contender.requests.counts)).toEqual({ GetItem: 1, UpdateItem: 1 });
    contender.requests.reset();
    expect(await b.tryAcquire(k)).toBeNull();
    expect(snapshot(contender.requests.counts)).toEqual({ GetItem: 1 });

    await delay(600 * 1.1 + 50);
    contender.requests.reset();
    expect(await b.tryAcquire(k)).not.toBeNull();
    expect(snapshot(contender.requests.counts)).toEqual({ GetItem: 1, UpdateItem: 1 });
  });

  it('blocking acquire of a free key nobody waits for = 1 UpdateItem (the same request as tryAcquire)', async () => {
    const { provider, requests } = measured({ ttlMs: 60_000 });
    const a = await provider.openSession();
    const k = key();
    requests.reset();
    const lease = await a.acquire(k);
    expect(snapshot(requests.counts)).toEqual({ UpdateItem: 1 });
    await lease.release();
    requests.reset();
    expect(await a.acquire(k, { timeoutMs: 5_000 })).toBeTruthy();
    expect(snapshot(requests.counts)).toEqual({ UpdateItem: 1 });
  });

  it('blocking acquire of a held key: refusal + lining up = 2 UpdateItems, 1 read per poll, the grant 1 (it also leaves the line)', async () => {
    const holder = measured({ ttlMs: 60_000 });
    const waiter = measured({ ttlMs: 60_000 }); // its heartbeat (every 20 s) stays out of the count
    const a = await holder.provider.openSession();
    const b = await waiter.provider.openSession();
    const k = key();
    const held = await a.tryAcquire(k);
    waiter.requests.reset();
    const waiting = b.acquire(k);
    await until(
      async () => ((await readItem(fx.raw, fx.table, k))?.waiters.includes(b.id) ? true : undefined),
      5_000,
      'b in line',
    );
    await until(
      async () => ((waiter.requests.counts.get('GetItem') ?? 0) >= 2 ? true : undefined),
      5_000,
      'polls',
    );
    expect(waiter.requests.counts.get('UpdateItem')).toBe(2);
    await held!.release();
    const lease = await waiting;
    expect(lease.fence).toBe(held!.fence + 1);
    expect(waiter.requests.counts.get('UpdateItem')).toBe(3);
    expect((await readItem(fx.raw, fx.table, k))?.waiters).toEqual([]);
  });

  it('a waiter that gives up leaves the line with 1 UpdateItem; a waiting session refreshes its place once per heartbeat period', async () => {
    const holder = measured({ ttlMs: 60_000 });
    const a = await holder.provider.openSession();
    const k = key();
    await a.tryAcquire(k);
    const { provider, requests } = measured();
    const b = await provider.openSession();
    const stop = new AbortController();
    const waiting = b.acquire(k, { signal: stop.signal });
    await until(
      async () => ((await readItem(fx.raw, fx.table, k))?.waiters.includes(b.id) ? true : undefined),
      5_000,
      'b in line',
    );
    requests.reset();
    const started = performance.now();
    await delay(b.intervalMs * 4 + b.intervalMs / 2);
    const periods = (performance.now() - started) / b.intervalMs;
    const refreshes = requests.counts.get('UpdateItem') ?? 0;
    expect(refreshes).toBeGreaterThanOrEqual(2);
    expect(refreshes).toBeLessThanOrEqual(Math.ceil(periods));
    requests.reset();
    stop.abort();
    await expect(waiting).rejects.toMatchObject({ code: 'ABORTED' });
    expect(requests.counts.get('UpdateItem')).toBe(1);
    expect((await readItem(fx.raw, fx.table, k))?.waiters).toEqual([]);
  });

  it('heartbeat: at most one UpdateItem per held lease per heartbeat period, and no reads', async () => {
    const { provider, requests } = measured();
    const a = await provider.openSession();
    const leases = await Promise.all(Array.from({ length: 5 }, () => a.tryAcquire(key())));
    expect(leases.every(Boolean)).toBe(true);
    requests.reset();
    const started = performance.now();
    await delay(a.intervalMs * 4 + a.intervalMs / 2);
    const periods = (performance.now() - started) / a.intervalMs;
    const updates = requests.counts.get('UpdateItem') ?? 0;
    expect(updates).toBeGreaterThanOrEqual(5 * 2); // it does renew
    expect(updates).toBeLessThanOrEqual(5 * Math.ceil(periods));
    expect(requests.counts.get('GetItem') ?? 0).toBe(0);
    expect(leases.every((l) => !l!.signal.aborted)).toBe(true);
  });

  it('an idle session sends one small read per heartbeat period (so an outage is noticed)', async () => {
    const { provider, requests } = measured();
    const a = await provider.openSession();
    requests.reset();
    const started = performance.now();
    await until(async () => ((requests.counts.get('GetItem') ?? 0) >= 3 ? true : undefined), 5_000, 'probes');
    const periods = (performance.now() - started) / a.intervalMs;
    expect(requests.counts.get('GetItem')).toBeLessThanOrEqual(Math.ceil(periods));
    expect(requests.counts.get('UpdateItem') ?? 0).toBe(0);
  });
});
