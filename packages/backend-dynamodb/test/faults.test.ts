import { randomUUID } from 'node:crypto';
import { PermissionDeniedError, UnavailableError } from '@baton/core';
import { describe, expect, it } from 'vitest';
import { countRequests, delay, readItem, until, useDynalite } from './helpers.js';

const fx = useDynalite('faults');
const TTL = 1_500;
const key = () => `faults/${randomUUID()}`;

async function proxied(options: { ttlMs?: number } = {}) {
  const proxy = await fx.proxy();
  const provider = fx.provider({ endpoint: proxy.endpoint, ttlMs: options.ttlMs ?? TTL });
  return { proxy, provider, requests: countRequests(provider.client) };
}

describe('requests that failed on the client but were applied by DynamoDB', () => {
  it('a heartbeat applied but answered with a reset does not lose the lease', async () => {
    const { proxy, provider } = await proxied();
    const a = await provider.openSession();
    const b = await fx.provider({ ttlMs: TTL }).openSession();
    const k = key();
    const lease = await a.tryAcquire(k);
    const before = await readItem(fx.raw, fx.table, k);

    proxy.inject('apply-then-reset', { operation: 'UpdateItem', count: 2 });
    a.heartbeatNow();
    await until(
      async () => (proxy.forwarded.length >= 3 ? true : undefined),
      5_000,
      'the renewal and its retries',
    );
    await delay(TTL * 2);
    expect(lease!.signal.aborted).toBe(false);
    const after = await readItem(fx.raw, fx.table, k);
    expect(after?.owner).toBe(a.id);
    expect(after?.rvn).not.toBe(before?.rvn);
    expect(await b.tryAcquire(k)).toBeNull();
  });

  it('an acquisition applied but answered with a reset is recognised as ours (by its record version)', async () => {
    const { proxy, provider } = await proxied();
    const a = await provider.openSession();
    const k = key();
    const first = await a.tryAcquire(k);
    await first!.release();

    proxy.inject('apply-then-reset', { operation: 'UpdateItem', count: 1 });
    const lease = await a.tryAcquire(k);
    expect(lease).not.toBeNull();
    expect(lease!.fence).toBe(first!.fence + 1);
    expect(await readItem(fx.raw, fx.table, k)).toMatchObject({ owner: a.id, fence: lease!.fence });
  });

  it('lining up applied but answered with a reset: the waiter finds its place (no ghost place ahead of it)', async () => {
    const { proxy, provider } = await proxied({ ttlMs: 60_000 });
    const a = await fx.provider({ ttlMs: 60_000 }).openSession();
    const b = await provider.openSession();
    const k = key();
    const held = await a.tryAcquire(k);
    expect(await b.tryAcquire(k)).toBeNull(); // b has seen it held: its acquire starts by lining up
    proxy.inject('apply-then-reset', { operation: 'UpdateItem', count: 1 });
    const waiting = b.acquire(k);
    await until(
      async () => ((await readItem(fx.raw, fx.table, k))?.waiters.length === 1 ? true : undefined),
      5_000,
      'b in line',
    );
    await delay(200);
    expect(await readItem(fx.raw, fx.table, k)).toMatchObject({ waiters: [b.id], waiting: 1 });
    await held!.release();
    const lease = await waiting;
    expect(lease.fence).toBe(held!.fence + 1);
    expect(await readItem(fx.raw, fx.table, k)).toMatchObject({ owner: b.id, waiters: [], waiting: 0 });
  });

  it('the first waiter’s grant applied but answered with a reset: the key is its lease, not a ghost lock', async () => {
    const { proxy, provider } = await proxied({ ttlMs: 60_000 });
    const a = await fx.provider({ ttlMs: 60_000 }).openSession();
    const b = await provider.openSession();
    const k = key();
    const held = await a.tryAcquire(k);
    const waiting = b.acquire(k);
    await until(
      async () => ((await readItem(fx.raw, fx.table, k))?.waiters.length === 1 ? true : undefined),
      5_000,
      'b in line',
    );
    proxy.inject('apply-then-reset', { operation: 'UpdateItem', count: 1 });
    await held!.release();
    const lease = await waiting;
    expect(lease.fence).toBe(held!.fence + 1);
    expect(lease.signal.aborted).toBe(false);
    expect(await readItem(fx.raw, fx.table, k)).toMatchObject({ owner: b.id, waiters: [], waiting: 0 });
    expect(await lease.release()).toBe(true);
  });

  it('a release applied but answered with a reset resolves true and leaves the key free', async () => {
    const { proxy, provider } = await proxied();
    const a = await provider.openSession();
    const b = await fx.provider({ ttlMs: TTL }).openSession();
    const k = key();
    const lease = await a.tryAcquire(k);
    proxy.inject('apply-then-reset', { operation: 'UpdateItem', count: 1 });
    expect(await lease!.release()).toBe(true);
    expect((await readItem(fx.raw, fx.table, k))?.owner).toBeUndefined();
    expect(await b.tryAcquire(k)).not.toBeNull();
  });
});

describe('release racing an in-flight heartbeat', () => {
  it('heartbeat applied, its answer still on the way: the release wins and reports true', async () => {
    const { proxy, provider } = await proxied();
    const a = await provider.openSession();
    const k = key();
    const lease = await a.tryAcquire(k);
    const forwardedBefore = proxy.forwarded.length;
    proxy.inject('delay-response', { operation: 'UpdateItem', count: 1, delayMs: 300 });
    a.heartbeatNow();
    await until(
      async () => (proxy.forwarded.length > forwardedBefore ? true : undefined),
      2_000,
      'heartbeat',
    );
    expect(await lease!.release()).toBe(true);
    expect((lease!.signal.reason as { code: string }).code).toBe('LEASE_RELEASED');
    await delay(400); // the heartbeat's answer arrives after the release
    expect((await readItem(fx.raw, fx.table, k))?.owner).toBeUndefined();
    expect(a.signal.aborted).toBe(false);
  });

  it('heartbeat still on its way to DynamoDB: the release wins, the late heartbeat changes nothing', async () => {
    const { proxy, provider } = await proxied();
    const a = await provider.openSession();
    const b = await fx.provider({ ttlMs: TTL }).openSession();
    const k = key();
    const lease = await a.tryAcquire(k);
    proxy.inject('delay', { operation: 'UpdateItem', count: 1, delayMs: 200 });
    a.heartbeatNow();
    await delay(20);
    expect(await lease!.release()).toBe(true);
    await delay(350); // the heartbeat reaches DynamoDB after the release and must fail its condition
    expect((await readItem(fx.raw, fx.table, k))?.owner).toBeUndefined();
    expect(await b.tryAcquire(k)).not.toBeNull();
    expect(a.signal.aborted).toBe(false);
  });

  it('many leases, releases fired while heartbeats are in flight: nothing throws, nothing stays held', async () => {
    const { proxy, provider } = await proxied();
    const a = await provider.openSession();
    const keys = Array.from({ length: 8 }, () => key());
    const leases = await Promise.all(keys.map((k) => a.tryAcquire(k)));
    proxy.inject('delay-response', { operation: 'UpdateItem', count: 4, delayMs: 150 });
    proxy.inject('delay', { operation: 'UpdateItem', count: 4, delayMs: 150 });
    a.heartbeatNow();
    await delay(30);
    const results = await Promise.all(leases.map((l) => l!.release()));
    expect(results.every((r) => r === true)).toBe(true);
    await delay(300);
    for (const k of keys) expect((await readItem(fx.raw, fx.table, k))?.owner).toBeUndefined();
  });
});

describe('transient errors are retried within the budget', () => {
  it('throttling on acquire is retried and the acquisition succeeds', async () => {
    const { proxy, provider, requests } = await proxied();
    const a = await provider.openSession();
    const k = key();
    const first = await a.tryAcquire(k);
    await first!.release();
    requests.reset();
    proxy.inject('throttle', { operation: 'UpdateItem', count: 3 });
    const lease = await a.tryAcquire(k);
    expect(lease).not.toBeNull();
    expect(requests.counts.get('UpdateItem')).toBe(4);
  });

  it('5xx answers on release and getHolder are retried', async () => {
    const { proxy, provider } = await proxied();
    const a = await provider.openSession();
    const k = key();
    const lease = await a.tryAcquire(k, { value: 'v' });
    proxy.inject('server-error', { operation: 'GetItem', count: 2 });
    expect((await provider.getHolder(k))?.value).toBe('v');
    proxy.inject('server-error', { operation: 'UpdateItem', count: 2 });
    expect(await lease!.release()).toBe(true);
  });

  it('throttled heartbeats keep the lease as long as one gets through in time', async () => {
    const { proxy, provider } = await proxied();
    const a = await provider.openSession();
    const lease = await a.tryAcquire(key());
    const updates = () => proxy.forwarded.filter((op) => op === 'UpdateItem').length;
    const before = updates();
    proxy.inject('throttle', { operation: 'UpdateItem', count: 4 });
    a.heartbeatNow();
    // Throttled answers never reach dynalite; wait for two heartbeats that did.
    await until(
      async () => (updates() >= before + 2 ? true : undefined),
      TTL * 3,
      'heartbeats after throttling',
    );
    expect(lease!.signal.aborted).toBe(false);
  });

  it('a transport outage longer than the budget surfaces as UNAVAILABLE, never as "not acquired"', async () => {
    const { proxy, provider } = await proxied();
    const a = await provider.openSession();
    proxy.broken = true;
    const started = performance.now();
    const error = await a.tryAcquire(key()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnavailableError);
    expect((error as Error).cause).toBeDefined();
    expect(performance.now() - started).toBeLessThan(TTL * 3);
    proxy.broken = false;
  });
});

describe('permanent errors', () => {
  it('AccessDenied becomes PERMISSION_DENIED naming the IAM actions, with the SDK error as cause', async () => {
    const { proxy, provider } = await proxied();
    const a = await provider.openSession();
    proxy.inject('access-denied', { operation: 'UpdateItem', count: 1 });
    const error = await a.tryAcquire(key()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PermissionDeniedError);
    expect((error as Error).message).toContain('dynamodb:UpdateItem');
    expect((error as Error).message).toContain(`table/${fx.table}`);
    expect((error as Error & { cause: { name: string } }).cause.name).toBe('AccessDeniedException');
  });

  it('AccessDenied on a heartbeat ends the session at once (retrying cannot help)', async () => {
    const { proxy, provider } = await proxied({ ttlMs: 3_000 });
    const a = await provider.openSession();
    const lease = await a.tryAcquire(key());
    proxy.inject('access-denied', { operation: 'UpdateItem', count: 1 });
    a.heartbeatNow();
    await until(async () => (a.signal.aborted ? true : undefined), 2_000, 'session loss');
    expect((a.signal.reason as { code: string }).code).toBe('SESSION_LOST');
    expect(lease!.signal.aborted).toBe(true);
  });
});
