import type { Lease } from '@baton/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConsulSession } from '../src/index.js';
import { type ConsulEnv, REAL_AGENT, rawLine, startConsulEnv, TEST_TTL_MS, testProvider } from './harness.js';
import { until } from './util.js';

/** How long Consul may take to invalidate an abandoned session: 2×TTL, plus slack. */
const EXPIRY_MS = TEST_TTL_MS * 2 + (REAL_AGENT ? 5_000 : 1_500);
const slow = { timeout: EXPIRY_MS * 3 + 10_000 };

/** Every key under `dir`, held or not, straight from the agent. */
async function placesUnder(env: ConsulEnv, dir: string): Promise<Array<{ Key: string; Session?: string }>> {
  const response = await fetch(`${env.url}/v1/kv/${encodeURI(dir)}?recurse`, {
    headers: env.token ? { 'x-consul-token': env.token } : {},
  });
  if (response.status === 404) return [];
  return (await response.json()) as Array<{ Key: string; Session?: string }>;
}

// The waiting line of blocking acquisitions, against the test server or (CONSUL_HTTP_ADDR) a real agent.
describe('the line of waiters under <key>/.wait/', () => {
  let env: ConsulEnv;
  beforeAll(async () => {
    env = await startConsulEnv();
  });
  afterAll(async () => {
    await env?.close();
  });

  it('places are not locks: list() and getHolder() report only the holder while others wait', async () => {
    const provider = testProvider(env);
    try {
      const [a, b, c] = [
        await provider.openSession(),
        await provider.openSession(),
        await provider.openSession(),
      ];
      const held = await a.tryAcquire('line/list/k');
      const waits = [b.acquire('line/list/k'), c.acquire('line/list/k')];
      await until(
        async () => (await rawLine(env, `${provider.prefix}line/list/k`)).length === 2,
        5_000,
        'two waiters',
      );
      const listed = await provider.list('line/list/');
      expect(listed.map((h) => [h.key, h.sessionId])).toEqual([['line/list/k', a.id]]);
      expect((await provider.getHolder('line/list/k'))?.sessionId).toBe(a.id);
      await held!.release();
      const first = await Promise.race(waits);
      await first.release();
      await Promise.all(waits.map((w) => w.then((l) => l.release())));
    } finally {
      await provider.close();
    }
  });

  it('a caller key that looks like a place is another Consul key and leaves the line alone', async () => {
    const provider = testProvider(env);
    try {
      const [a, b, c] = [
        await provider.openSession(),
        await provider.openSession(),
        await provider.openSession(),
      ];
      const held = await a.tryAcquire('line/lookalike');
      const waiting = b.acquire('line/lookalike');
      await until(
        async () => (await rawLine(env, `${provider.prefix}line/lookalike`)).length === 1,
        5_000,
        'b waits',
      );
      const impostor = await c.tryAcquire('line/lookalike/.wait/x');
      expect(impostor).not.toBeNull();
      expect(await rawLine(env, `${provider.prefix}line/lookalike`)).toEqual([b.id]);
      await held!.release();
      expect((await waiting).sessionId).toBe(b.id);
    } finally {
      await provider.close();
    }
  });

  it(
    'the place of a crashed waiter is released by Consul with its session; the waiter behind passes and deletes it',
    slow,
    async () => {
      const provider = testProvider(env);
      try {
        const [a, crashed, c] = [
          await provider.openSession(),
          await provider.openSession(),
          await provider.openSession(),
        ];
        const dir = `${provider.prefix}line/crash/.wait/`;
        const held = await a.tryAcquire('line/crash');
        void crashed.acquire('line/crash').catch(() => undefined);
        await until(
          async () => (await rawLine(env, `${provider.prefix}line/crash`)).length === 1,
          5_000,
          'in line',
        );
        let got: Lease | undefined;
        const waiting = c.acquire('line/crash').then((lease) => {
          got = lease;
          return lease;
        });
        await until(
          async () => (await rawLine(env, `${provider.prefix}line/crash`)).length === 2,
          5_000,
          'in line',
        );
        (crashed as ConsulSession).abandon();
        const abandonedAt = performance.now();
        await held!.release();
        const lease = await waiting;
        // Not before Consul invalidated the crashed session (no sooner than TTL after its last renewal,
        // which came at most TTL/2 before the crash).
        expect(performance.now() - abandonedAt).toBeGreaterThanOrEqual(TEST_TTL_MS / 2 - 50);
        expect(got?.sessionId).toBe(c.id);
        expect(lease.fence).toBeGreaterThan(held!.fence);
        expect(await placesUnder(env, dir)).toEqual([]);
      } finally {
        await provider.close();
      }
    },
  );
});
