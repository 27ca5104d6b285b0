import { leaderElectionSuite } from '@baton/testkit';
import { describe, it } from 'vitest';
import { pgHarnessFactory } from './harness.js';

const TTL_MS = 1_500;

describe('leaderElectionSuite on PostgreSQL (PGlite, or the server at DATABASE_URL)', () => {
  leaderElectionSuite(it, pgHarnessFactory('locks_election', TTL_MS), {
    expiryBoundMs: TTL_MS + 500,
    granularityMs: 50,
  });
});
