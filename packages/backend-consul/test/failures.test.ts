import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ConsulEnv,
  freshPrefix,
  REAL_AGENT,
  rawEntry,
  startConsulEnv,
  TEST_TTL_MS,
  testProvider,
  testServer,
} from './harness.js';
import { abortedWithin, delay, rejectionOf, until } from './util.js';

const serverIt = REAL_AGENT ? it.skip : it;

// Transport and server failures: what is survived, what is lost, and how fast.
describe('failures', () => {
  let env: ConsulEnv;
  beforeAll(async () => {
    env = await startConsulEnv();
  });
  afterAll(async () => {
    await env?.close();
  });

  serverIt('a transient 500 during renewal does not lose the session', async () => {
    const server = testServer(env);
    const errors: string[] = [];
    const provider = testProvider(env, { ttlMs: 500, onError: (_e, context) => errors.push(context) });
    try {
      const session = await provider.openSession();
      const lease = await session.tryAcquire('renew/500');
      server.faults.failNext(2, {
        status: 500,
        body: 'rpc error: leadership lost',
        pathPrefix: '/v1/session/renew',
      });
      await delay(1_500);
      expect(errors.filter((c) => c.startsWith('renew')).length).toBe(2);
      expect(session.signal.aborted).toBe(false);
      expect(lease!.signal.aborted).toBe(false);
      expect(server.getEntry(`${provider.prefix}renew/500`)?.Session).toBe(session.id);
    } finally {
      await provider.close();
    }
  });

  serverIt(
    'a server that stops answering for longer than the TTL loses the session within the TTL',
    async () => {
      const server = testServer(env);
      const provider = testProvider(env, { ttlMs: 500 });
      try {
        const session = await provider.openSession();
        const lease = await session.tryAcquire('pause/k');
        await delay(100);
        server.faults.pause();
        const pausedAt = performance.now();
        const reason = (await abortedWithin(lease!.signal, 3_000, 'lease signal')) as { code?: string };
        const took = performance.now() - pausedAt;
        expect(reason.code).toBe('LEASE_LOST');
        expect((session.signal.reason as { code?: string }).code).toBe('SESSION_LOST');
        // Trusted for at most one TTL after the last good renewal began (which was before the pause).
        expect(took).toBeLessThanOrEqual(500 + 300);
        expect(await rejectionOf(session.tryAcquire('pause/other'))).toMatchObject({ code: 'SESSION_LOST' });
      } finally {
        server.faults.resume();
        await provider.close();
      }
    },
  );

  serverIt(
    'a server that goes away (closed) loses the session; requests fail as UNAVAILABLE, never null',
    async () => {
      const own = await startConsulEnv();
      const provider = testProvider(own, { ttlMs: 500, requestTimeoutMs: 300 });
      try {
        const session = await provider.openSession();
        const lease = await session.tryAcquire('gone/k');
        await own.close();
        const refused = await rejectionOf(session.tryAcquire('gone/other'));
        expect(refused).toMatchObject({ code: 'UNAVAILABLE', retryable: true });
        expect(refused.cause).toBeDefined();
        expect(await rejectionOf(provider.getHolder('gone/k'))).toMatchObject({ code: 'UNAVAILABLE' });
        expect(await abortedWithin(lease!.signal, 2_000, 'lease signal')).toMatchObject({
          code: 'LEASE_LOST',
        });
      } finally {
        await provider.close();
        await own.close();
      }
    },
  );

  serverIt(
    'the key monitor rides out a leader election and still notices a force-release afterwards',
    async () => {
      const server = testServer(env);
      const errors: string[] = [];
      // TTL 3 s: renewals every 1.5 s. The election (+1.3 s to +1.9 s) covers a renewal and the monitor's
      // first query (+1.4 s); the renewal is retried in time, within the session's budget (until +3 s).
      const provider = testProvider(env, {
        ttlMs: 3_000,
        monitorAfterMs: 1_400,
        onError: (_e, context) => errors.push(context),
      });
      try {
        const session = await provider.openSession();
        const openedAt = performance.now();
        const lease = await session.tryAcquire('election/k');
        await delay(1_300 - (performance.now() - openedAt));
        server.faults.leaderElection({ durationMs: 600 });
        await until(
          () => errors.some((c) => c.startsWith('monitor')) && errors.some((c) => c.startsWith('renew')),
          2_000,
          'the election to hit the monitor and a renewal',
        );
        await delay(2_800 - (performance.now() - openedAt));
        expect((lease!.signal.reason as Error | undefined)?.message).toBeUndefined();
        expect(session.signal.aborted).toBe(false);

        expect(await provider.forceRelease('election/k')).toBe(true);
        const reason = (await abortedWithin(lease!.signal, 2_000, 'lease signal')) as Error & {
          code?: string;
        };
        expect(reason.code).toBe('LEASE_LOST');
        expect(reason.message).toMatch(/deleted/);
      } finally {
        server.faults.clear();
        await provider.close();
      }
    },
    10_000,
  );

  serverIt(
    'an acquisition whose answer was lost is released in the background, so others get the key',
    async () => {
      const server = testServer(env);
      const provider = testProvider(env);
      try {
        const [a, b] = [await provider.openSession(), await provider.openSession()];
        server.faults.failNext(1, { status: 500, pathPrefix: '/v1/txn', afterProcessing: true });
        const error = await rejectionOf(a.tryAcquire('lost-answer/k'));
        expect(error).toMatchObject({ code: 'UNAVAILABLE' });
        const consulKey = `${provider.prefix}lost-answer/k`;
        // Consul did take the lock for a; without cleanup nobody could have it until a's session ended.
        const ghost = server.history().find((h) => h.key === consulKey);
        expect(ghost?.session).toBe(a.id);
        await until(async () => (await b.tryAcquire('lost-answer/k')) !== null, 3_000, 'b to get the key');
        expect(a.signal.aborted).toBe(false);
        expect(a.leases()).toHaveLength(0);
      } finally {
        await provider.close();
      }
    },
  );

  serverIt(
    'retrying an acquisition whose answer was lost yields a fresh fence, not the ghost one',
    async () => {
      const server = testServer(env);
      const provider = testProvider(env, { ttlMs: 10_000 });
      try {
        const a = await provider.openSession();
        server.faults.failNext(1, { status: 500, pathPrefix: '/v1/txn', afterProcessing: true });
        await rejectionOf(a.tryAcquire('lost-answer/retry'));
        const ghost = server.history().find((h) => h.key === `${provider.prefix}lost-answer/retry`)!;
        const lease = await a.tryAcquire('lost-answer/retry');
        expect(lease).not.toBeNull();
        // Consul lets a session re-lock what it holds without a new index: the ghost is released (its key
        // deleted) first.
        expect(lease!.fence).toBeGreaterThan(ghost.modifyIndex);
        expect(server.history().find((h) => h.modifyIndex === ghost.modifyIndex)?.end).toBe('deleted');
      } finally {
        await provider.close();
      }
    },
  );

  serverIt('a release that failed is retried in the background while the session lives', async () => {
    const server = testServer(env);
    const provider = testProvider(env, { ttlMs: 10_000 });
    try {
      const [a, b] = [await provider.openSession(), await provider.openSession()];
      const lease = await a.tryAcquire('release-retry/k', { value: 'keep' });
      server.faults.failNext(1, { status: 503, pathPrefix: '/v1/txn', method: 'PUT' });
      expect(await rejectionOf(lease!.release())).toMatchObject({ code: 'UNAVAILABLE' });
      expect(lease!.signal.aborted).toBe(true);
      await until(async () => (await b.tryAcquire('release-retry/k')) !== null, 3_000, 'b to get the key');
      expect(a.signal.aborted).toBe(false);
    } finally {
      await provider.close();
    }
  });

  it('a session destroyed behind our back: renewal ends every lease, acquisitions fail with SESSION_LOST', async () => {
    const provider = testProvider(env);
    try {
      const session = await provider.openSession();
      const leases = await Promise.all(['x', 'y', 'z'].map((k) => session.tryAcquire(`gone-session/${k}`)));
      await fetch(`${env.url}/v1/session/destroy/${session.id}`, {
        method: 'PUT',
        headers: env.token ? { 'x-consul-token': env.token } : {},
      });
      const reason = await Promise.race([
        abortedWithin(session.signal, TEST_TTL_MS + 2_000, 'session signal'),
        session.tryAcquire('gone-session/new').then(
          () => undefined,
          (error: unknown) => error,
        ),
      ]);
      expect(reason).toMatchObject({ code: 'SESSION_LOST' });
      for (const lease of leases) {
        expect(await abortedWithin(lease!.signal, 1_000, 'lease signal')).toMatchObject({
          code: 'LEASE_LOST',
        });
      }
      expect(await rejectionOf(session.tryAcquire('gone-session/later'))).toMatchObject({
        code: 'SESSION_LOST',
      });
    } finally {
      await provider.close();
    }
  });

  it('acquire on a session Consul no longer knows is SESSION_LOST at once, not "not acquired"', async () => {
    const provider = testProvider(env, { ttlMs: REAL_AGENT ? 10_000 : 5_000 });
    try {
      const session = await provider.openSession();
      await fetch(`${env.url}/v1/session/destroy/${session.id}`, {
        method: 'PUT',
        headers: env.token ? { 'x-consul-token': env.token } : {},
      });
      expect(await rejectionOf(session.tryAcquire('unknown-session/k'))).toMatchObject({
        code: 'SESSION_LOST',
      });
      expect(session.signal.reason).toMatchObject({ code: 'SESSION_LOST' });
    } finally {
      await provider.close();
    }
  });

  serverIt(
    'a 403 (unknown or missing token) is PERMISSION_DENIED naming the ACL policy, never retried',
    async () => {
      const secured = await startConsulEnv({ aclTokens: ['root-token'] });
      const prefix = freshPrefix();
      const providers = [
        testProvider(secured, { token: 'not-a-token', prefix }),
        testProvider({ ...secured, token: undefined }, { prefix }),
      ];
      try {
        for (const provider of providers) {
          const error = await rejectionOf(provider.openSession());
          expect(error).toMatchObject({ code: 'PERMISSION_DENIED', retryable: false });
          expect(error.message).toContain(`key_prefix "${prefix}" { policy = "write" }`);
          expect(error.message).toContain('session_prefix "" { policy = "write" }');
          expect(error.cause).toBeDefined();
          expect(await rejectionOf(provider.getHolder('k'))).toMatchObject({ code: 'PERMISSION_DENIED' });
          const watch = provider.watch('k')[Symbol.asyncIterator]();
          expect(await rejectionOf(watch.next())).toMatchObject({ code: 'PERMISSION_DENIED' });
        }
        // A provider built in code names its option; one built from the environment names the variable.
        expect((await rejectionOf(providers[0]!.openSession())).message).toMatch(/check the token option/);
        const good = testProvider(secured, { prefix });
        providers.push(good);
        const session = await good.openSession();
        const lease = await session.tryAcquire('k');
        expect(lease).not.toBeNull();
        expect(await lease!.release()).toBe(true);
      } finally {
        await Promise.all(providers.map((p) => p.close()));
        await secured.close();
      }
    },
  );

  serverIt(
    'sessions bound to serfHealth die with the node check; unbound sessions (the default) do not',
    async () => {
      const server = testServer(env);
      const bound = testProvider(env, { checks: ['serfHealth'], ttlMs: 1_000 });
      const unbound = testProvider(env, { ttlMs: 1_000 });
      try {
        const [b, u] = [await bound.openSession(), await unbound.openSession()];
        const [lb, lu] = [await b.tryAcquire('checks/b'), await u.tryAcquire('checks/u')];
        server.faults.failNodeCheck();
        // Consul releases the bound session's key at once; its holder learns at the next renewal (≤ TTL/2).
        await until(
          () => server.getEntry(`${bound.prefix}checks/b`)?.Session === undefined,
          2_000,
          'invalidation',
        );
        expect(await abortedWithin(lb!.signal, 2_000, 'bound lease')).toMatchObject({ code: 'LEASE_LOST' });
        await delay(1_000);
        expect(lu!.signal.aborted).toBe(false);
        expect(server.getEntry(`${unbound.prefix}checks/u`)?.Session).toBe(u.id);
      } finally {
        server.faults.restoreNodeCheck();
        await bound.close();
        await unbound.close();
      }
    },
  );

  serverIt('a check that does not exist is a configuration error naming checks', async () => {
    const provider = testProvider(env, { checks: ['no-such-check'] });
    try {
      const error = await rejectionOf(provider.openSession());
      expect(error).toMatchObject({ code: 'CONFIG_INVALID', field: 'checks' });
      expect(error.message).toMatch(/BATON_CONSUL_CHECKS/);
    } finally {
      await provider.close();
    }
  });

  it('a TTL outside Consul’s range is rejected before any request', async () => {
    const provider = testProvider(env, { minTtlMs: 10_000, ttlMs: 15_000 });
    try {
      expect(await rejectionOf(provider.openSession({ ttlMs: 2_000 }))).toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
      expect(await rejectionOf(provider.openSession({ lockDelayMs: 61_000 }))).toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
    } finally {
      await provider.close();
    }
  });

  it('rawEntry sanity: the harness reads what Consul stores', async () => {
    const provider = testProvider(env);
    try {
      const session = await provider.openSession();
      const lease = await session.tryAcquire('raw/k', { value: 'hello' });
      const entry = await rawEntry(env, `${provider.prefix}raw/k`);
      expect(entry).toMatchObject({ Session: session.id, Value: 'hello', ModifyIndex: lease!.fence });
    } finally {
      await provider.close();
    }
  });
});
