import { semaphoreSuite } from '@baton/testkit';
import { afterAll, beforeAll, it } from 'vitest';
import { type ConsulEnv, consulHarness, REAL_AGENT, startConsulEnv, TEST_TTL_MS } from './harness.js';

// Semaphores on Consul sessions and blocking queries, against the Consul-compatible test server.
let env: ConsulEnv;
beforeAll(async () => {
  env = await startConsulEnv();
});
afterAll(async () => {
  await env?.close();
});

semaphoreSuite(it, () => consulHarness(env), {
  // Consul invalidates an unrenewed session after up to 2×TTL.
  expiryBoundMs: TEST_TTL_MS * 2,
  lockDelayMs: REAL_AGENT ? 2_000 : 300,
  granularityMs: REAL_AGENT ? 200 : 50,
});
