import { lockProviderSuite } from '@baton/testkit';
import { describe, it } from 'vitest';
import { haveRedis, redisHarnessFactory } from './harness.js';

// Two seconds: a starved event loop (a busy CI machine) must not lose sessions the suite expects alive.
const TTL_MS = 2_000;

describe.skipIf(!haveRedis)('lockProviderSuite on a real Redis', () => {
  lockProviderSuite(it, redisHarnessFactory('suite', TTL_MS), {
    expiryBoundMs: TTL_MS + 500,
    lockDelayMs: 1_000,
    granularityMs: 50,
  });
});
