import { leaderElectionSuite } from '@baton/testkit';
import { afterAll, beforeAll, it } from 'vitest';
import { type ConsulEnv, consulHarness, REAL_AGENT, startConsulEnv, TEST_TTL_MS } from './harness.js';

// Leader election and discovery on Consul sessions + blocking queries (native watch).
let env: ConsulEnv;
beforeAll(async () => {
  env = await startConsulEnv();
});
afterAll(async () => {
  await env?.close();
});

leaderElectionSuite(it, () => consulHarness(env), {
  // Consul invalidates an unrenewed session after up to 2×TTL.
  expiryBoundMs: TEST_TTL_MS * 2,
  granularityMs: REAL_AGENT ? 200 : 50,
});
