import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { countRequests, delay, until, useDynalite } from './helpers.js';

const fx = useDynalite('trips');
const TTL = 900;
const key = () => `trips/${randomUUID()}`;

function measured(options: { ttlMs?: number } = {}) {
  const provider = fx.provider({ ttlMs: options.ttlMs ?? TTL });
  return { provider, requests: countRequests(provider.client) };
}

/** Requests by operation, as a plain object for readable assertions. */
function snapshot(counts: Map<string, number>): Record<string, number> {
  return Object.fromEntries([...counts.entries()].sort());
}

describe('round trips per operation (counted by an SDK middleware)', () => {
  it('acquire of a free (released) key = 1 UpdateItem; release = 1 UpdateItem', async () => {
    const { provider, requests } = measured({ ttlMs: 60_000 });
    const a = await provider.openSession();
    const k = key();
    await (await a.tryAcquire(k))!.release();

    requests.reset();
    const lease = await a.tryAcquire(k);
    expect(lease).not.toBeNull();
    expect(snapshot(requests.counts)).toEqual({ UpdateItem: 1 });

    requests.reset();
    expect(await lease!.release()).toBe(true);
    expect(snapshot(requests.counts)).toEqual({ UpdateItem: 1 });
  });

  it('first use of a key = 4 requests (failed grant, read, fence epoch, create)', async () => {
    const { provider, requests } = measured({ ttlMs: 60_000 });
    const a = await provider.openSession();
    requests.reset();
    expect(await a.tryAcquire(key())).not.toBeNull();
    expect(snapshot(requests.counts)).toEqual({ GetItem: 1, UpdateItem: 3 });
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
