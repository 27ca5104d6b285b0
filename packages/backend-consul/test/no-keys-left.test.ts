import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConsulLockProvider, ConsulSession } from '../src/index.js';
import { type ConsulEnv, REAL_AGENT, startConsulEnv, TEST_TTL_MS, testProvider } from './harness.js';
import { until } from './util.js';

/** How long Consul may take to invalidate an abandoned session: 2×TTL, plus slack. */
const EXPIRY_MS = TEST_TTL_MS * 2 + (REAL_AGENT ? 5_000 : 1_500);

/** Every key under the provider's prefix, read straight from the agent (`consul kv get -keys <prefix>`). */
async function keysUnder(env: ConsulEnv, provider: ConsulLockProvider): Promise<string[]> {
  const response = await fetch(`${env.url}/v1/kv/${encodeURI(provider.prefix)}?keys&consistent`, {
    headers: env.token ? { 'x-consul-token': env.token } : {},
  });
  if (response.status === 404) return [];
  if (!response.ok) throw new Error(`GET ?keys: HTTP ${response.status} ${await response.text()}`);
  return (await response.json()) as string[];
}

// Issue 15: a key per task stayed in Consul's KV forever. Released keys go with their release, and (the default
// behavior) an expired holder's keys go when Consul invalidates its session: what is left is bounded by what
// is held, whatever the number of tasks.
describe('no lock key left behind (Consul)', () => {
  let env: ConsulEnv;
  beforeAll(async () => {
    env = await startConsulEnv();
  });
  afterAll(async () => {
    await env?.close();
  });

  it('after 200 task locks, a crash and a lockAtLeastFor window, only the held keys remain', {
    timeout: EXPIRY_MS * 2 + 60_000,
  }, async () => {
    const provider = testProvider(env, { lockDelayMs: 200 });
    try {
      const workers = await Promise.all([1, 2, 3, 4].map(() => provider.openSession()));
      await Promise.all(
        workers.map(async (session, w) => {
          for (let i = 0; i < 50; i++) {
            const lease = await session.tryAcquire(`task/${w * 50 + i}`);
            expect(lease).not.toBeNull();
            expect(await lease!.release()).toBe(true);
          }
        }),
      );
      expect(await keysUnder(env, provider)).toEqual([]);

      const crashed = await provider.openSession();
      for (let i = 0; i < 5; i++) expect(await crashed.tryAcquire(`crashed/${i}`)).not.toBeNull();
      const longTask = await workers[0]!.tryAcquire('long/1', { lockAtLeastForMs: 1_000 });
      const stillHeld = await workers[1]!.tryAcquire('held/1');
      // Each held key, and its holder's acquisition time (`<key>/.since/<session>`).
      expect((await keysUnder(env, provider)).length).toBe(14);

      (crashed as ConsulSession).abandon();
      await longTask!.release();
      await until(
        async () => (await keysUnder(env, provider)).length === 2,
        EXPIRY_MS + 2_000,
        'only the held key to remain',
      );
      expect(await keysUnder(env, provider)).toEqual([
        `${provider.prefix}held/1`,
        `${provider.prefix}held/1/.since/${workers[1]!.id}`,
      ]);
      await stillHeld!.release();
      expect(await keysUnder(env, provider)).toEqual([]);
    } finally {
      await provider.close();
    }
  });

  // Lock-delay and fences across the deletion: consul.test.ts ('lock-delay (Consul’s own) ...', and
  // 'behavior=delete (default) ...') run with the default behavior.
});
