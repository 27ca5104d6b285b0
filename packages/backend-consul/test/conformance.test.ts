import { lockProviderSuite } from '@baton/testkit';
import { afterAll, beforeAll, it } from 'vitest';
import { type ConsulEnv, consulHarness, REAL_AGENT, startConsulEnv, TEST_TTL_MS } from './harness.js';

// The contract every backend keeps, against the Consul-compatible test server (or a real agent).
let env: ConsulEnv;
beforeAll(async () => {
  env = await startConsulEnv();
});
afterAll(async () => {
  await env?.close();
});

lockProviderSuite(it, () => consulHarness(env), {
  // Consul invalidates an unrenewed session after up to 2×TTL.
  expiryBoundMs: TEST_TTL_MS * 2,
  lockDelayMs: REAL_AGENT ? 2_000 : 300,
  granularityMs: REAL_AGENT ? 200 : 50,
});
