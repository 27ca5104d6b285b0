import { leaderElectionSuite } from '@baton/testkit';
import { it } from 'vitest';
import { dynamoHarnessFactory } from './harness.js';

const TTL_MS = 1_000;

leaderElectionSuite(it, dynamoHarnessFactory('election', TTL_MS), {
  expiryBoundMs: TTL_MS * 1.1 + TTL_MS / 2,
  granularityMs: 50,
});
