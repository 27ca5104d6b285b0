import { leaderElectionSuite } from '@baton/testkit';
import { describe, it } from 'vitest';
import { haveRedis, redisHarnessFactory } from './harness.js';

const TTL_MS = 1_000;

describe.skipIf(!haveRedis)('leaderElectionSuite on a real Redis', () => {
  leaderElectionSuite(it, redisHarnessFactory('election', TTL_MS), {
    expiryBoundMs: TTL_MS + 500,
    granularityMs: 50,
  });
});
