import { semaphoreSuite } from '@baton/testkit';
import { describe, it } from 'vitest';
import { haveRedis, redisHarnessFactory } from './harness.js';

// As in the conformance run: two-second sessions, expired by the server's own TTL.
const TTL_MS = 2_000;

describe.skipIf(!haveRedis)('semaphoreSuite on a real Redis', () => {
  semaphoreSuite(it, redisHarnessFactory('semaphore', TTL_MS), {
    expiryBoundMs: TTL_MS + 500,
    lockDelayMs: 1_000,
    granularityMs: 50,
  });
});
