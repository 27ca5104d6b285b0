import { leaderElectionSuite } from '@baton/testkit';
import { describe, it } from 'vitest';
import { haveRedis, redisHarnessFactory } from './harness.js';

// Two seconds: a starved event loop (a busy CI machine) must not lose sessions the suite expects alive.
const TTL_MS = 2_000;

describe.skipIf(!haveRedis)('leaderElectionSuite on a real Redis', () => {
  leaderElectionSuite(it, redisHarnessFactory('election', TTL_MS), {
    expiryBoundMs: TTL_MS + 500,
    granularityMs: 50,
  });
});
