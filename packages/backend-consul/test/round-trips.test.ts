import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConsulEnv, REAL_AGENT, rawLine, startConsulEnv, testProvider, testServer } from './harness.js';
import { delay, until } from './util.js';

// Requests counted at the test server: what each operation costs on the wire.
describe.skipIf(REAL_AGENT)('round trips (counted at the test server)', () => {
  let env: ConsulEnv;
  beforeAll(async () => {
    env = await startConsulEnv();
  });
  afterAll(async () => {
    await env?.close();
  });

  it('acquire is one request (lock + get in one txn) and release is one request', async () => {
    const server = testServer(env);
    // A long TTL keeps renewals out of the measured windows.
    const provider = testProvider(env, { ttlMs: 10_000 });
    try {
      const session = await provider.openSession();
      server.requests.reset();
      const lease = await session.tryAcquire('rt/one', { value: 'v' });
      expect(lease).not.toBeNull();
      expect(server.requests.total()).toBe(1);
      expect(server.requests.count('PUT /v1/txn')).toBe(1);

      server.requests.reset();
      expect(await session.tryAcquire('rt/one')).toBeNull(); // re-entrant attempt: answered locally
      const other = await provider.openSession();
      server.requests.reset();
      expect(await other.tryAcquire('rt/one')).toBeNull(); // contention: one rolled-back txn
      expect(server.requests.total()).toBe(1);

      server.requests.reset();
      expect(await lease!.release()).toBe(true);
      expect(server.requests.total()).toBe(1);
      expect(server.requests.count('PUT /v1/txn')).toBe(1);
      // check-session + delete: the key goes with the release, so none is left behind.
      expect(server.getEntry(`${provider.prefix}rt/one`)).toBeUndefined();
    } finally {
      await provider.close();
    }
  });

  it('a short task costs exactly acquire + release: the key monitor starts only after monitorAfterMs', async () => {
    const server = testServer(env);
    const provider = testProvider(env, { ttlMs: 10_000, monitorAfterMs: 300 });
    try {
      const session = await provider.openSession();
      server.requests.reset();
      const short = await session.tryAcquire('rt/short');
      await delay(100);
      await short!.release();
      expect(server.requests.total()).toBe(2);

      server.requests.reset();
      const long = await session.tryAcquire('rt/long');
      await until(() => server.requests.count('GET /v1/kv') > 0, 3_000, 'the monitor to start');
      const monitor = server.requests.log().find((r) => r.method === 'GET')!;
      expect(monitor.query).toMatch(/consistent/);
      expect(monitor.query).toMatch(/index=\d+/);
      expect(monitor.at - server.requests.log()[0]!.at).toBeGreaterThanOrEqual(250);
      await long!.release();
    } finally {
      await provider.close();
    }
  });

  it('renewal is one request per session per TTL/2, whether it holds 1 lease or 50', async () => {
    const server = testServer(env);
    const ttlMs = 400;
    const provider = testProvider(env, { ttlMs, monitorAfterMs: 60_000 });
    try {
      const [one, many] = [await provider.openSession(), await provider.openSession()];
      expect(await one.tryAcquire('rt/renew/only')).not.toBeNull();
      const leases = await Promise.all(
        Array.from({ length: 50 }, (_, i) => many.tryAcquire(`rt/renew/${i}`)),
      );
      expect(leases.every(Boolean)).toBe(true);

      server.requests.reset();
      const windowMs = ttlMs * 3;
      await delay(windowMs);
      const log = server.requests.log();
      const renewsOf = (id: string) => log.filter((r) => r.path === `/v1/session/renew/${id}`).length;
      const expected = windowMs / (ttlMs / 2);
      expect(renewsOf(one.id)).toBeGreaterThanOrEqual(expected - 1);
      expect(renewsOf(one.id)).toBeLessThanOrEqual(expected + 1);
      expect(Math.abs(renewsOf(many.id) - renewsOf(one.id))).toBeLessThanOrEqual(1);
      // Nothing else goes over the wire for held leases.
      expect(log.length).toBe(renewsOf(one.id) + renewsOf(many.id));
      console.info(
        `renewals over ${windowMs} ms at TTL ${ttlMs} ms: 1 lease → ${renewsOf(one.id)}, 50 leases → ${renewsOf(many.id)}`,
      );
    } finally {
      await provider.close();
    }
  });

  it('blocking acquire: 2 txns when nobody holds or waits (line up, take); a waiter blocks on the line or the key and takes with 1 txn', async () => {
    const server = testServer(env);
    const provider = testProvider(env, { ttlMs: 10_000, monitorAfterMs: 60_000 });
    try {
      const [a, b, c] = [
        await provider.openSession(),
        await provider.openSession(),
        await provider.openSession(),
      ];
      server.requests.reset();
      const first = await a.acquire('rt/line');
      expect(server.requests.total()).toBe(2);
      expect(server.requests.count('PUT /v1/txn')).toBe(2);

      server.requests.reset();
      const bWaits = b.acquire('rt/line');
      await until(() => server.requests.count('GET /v1/kv') >= 2, 3_000, 'b to wait on the key');
      const cWaits = c.acquire('rt/line');
      await until(() => server.requests.count('GET /v1/kv') >= 3, 3_000, 'c to wait on the line');
      await delay(100);
      const log = server.requests.log();
      // b: line up, take (refused: held), then the watch of the key (one read, then one blocking query).
      // c: line up, then one blocking query on the line (b is ahead): no take while someone waits ahead.
      expect(server.requests.count('PUT /v1/txn')).toBe(3);
      const reads = log.filter((r) => r.method === 'GET');
      expect(reads.filter((r) => r.path.endsWith('/.wait/') && r.query.includes('recurse')).length).toBe(1);
      expect(reads.filter((r) => r.path.endsWith('rt/line')).length).toBe(2);

      server.requests.reset();
      await first.release();
      const bLease = await bWaits;
      // release (1 txn), b's blocking query returns (not a request), b takes (1 txn).
      expect(server.requests.count('PUT /v1/txn')).toBe(2);
      server.requests.reset();
      await bLease.release();
      await cWaits;
      // c's blocking query on the line returned when b took the key (and left the line); c then waited on
      // the key (its blocking query was sent before the count was reset) and takes it with 1 txn, after b's
      // release txn.
      expect(server.requests.count('PUT /v1/txn')).toBe(2);
    } finally {
      await provider.close();
    }
  });

  it('a waiter that gives up leaves the line with one DELETE', async () => {
    const server = testServer(env);
    const provider = testProvider(env, { ttlMs: 10_000, monitorAfterMs: 60_000 });
    try {
      const [a, b] = [await provider.openSession(), await provider.openSession()];
      await a.tryAcquire('rt/leave');
      server.requests.reset();
      const stop = new AbortController();
      const waiting = b.acquire('rt/leave', { signal: stop.signal });
      // b waits once its blocking query is in (the watch's first read, without an index, comes before it).
      await until(
        () => server.requests.log().some((r) => r.method === 'GET' && /(^|&)index=[1-9]/.test(r.query)),
        3_000,
        'b to wait',
      );
      server.requests.reset();
      stop.abort();
      await expect(waiting).rejects.toMatchObject({ code: 'ABORTED' });
      await until(() => server.requests.count('DELETE /v1/kv') === 1, 3_000, 'the place to be deleted');
      expect(server.requests.total(), JSON.stringify(server.requests.log())).toBe(1);
      expect(await rawLine(env, `${provider.prefix}rt/leave`)).toEqual([]);
    } finally {
      await provider.close();
    }
  });

  it('getHolder is one consistent read, plus two for the holder times; list one, plus one per holding session', async () => {
    const server = testServer(env);
    const provider = testProvider(env, { ttlMs: 10_000 });
    try {
      const session = await provider.openSession();
      const other = await provider.openSession();
      await session.tryAcquire('rt/read/a');
      await session.tryAcquire('rt/read/b');
      await other.tryAcquire('rt/read/c');
      server.requests.reset();
      expect(await provider.getHolder('rt/read/free')).toBeNull();
      expect(server.requests.total()).toBe(1);
      expect((await provider.getHolder('rt/read/a'))?.sessionId).toBe(session.id);
      // The key, then its holder's .since entry and session (/v1/session/info), in parallel.
      expect(server.requests.total()).toBe(4);
      // The same acquisition again: its stamp is known, only the key and the session's TTL are read.
      expect((await provider.getHolder('rt/read/a'))?.acquiredAt).toBeGreaterThan(0);
      expect(server.requests.total()).toBe(6);
      server.requests.reset();
      expect(await provider.list('rt/read/')).toHaveLength(3);
      // One recursive read (it brings the .since entries), then one /v1/session/info per holding session.
      expect(server.requests.total()).toBe(3);
      expect(server.requests.log().every((r) => r.method === 'GET' && r.query.includes('consistent'))).toBe(
        true,
      );
    } finally {
      await provider.close();
    }
  });
});
