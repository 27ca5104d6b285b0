import { semaphoreSuite } from '@baton/testkit';
import { describe, it } from 'vitest';
import { pgHarnessFactory } from './harness.js';

// As in the conformance run (see there): the database judges expiry, the suite sees it a read later.
const TTL_MS = 1_500;

describe('semaphoreSuite on PostgreSQL (PGlite, or the server at DATABASE_URL)', () => {
  semaphoreSuite(it, pgHarnessFactory('locks_semaphore', TTL_MS), {
    expiryBoundMs: TTL_MS + 500,
    lockDelayMs: 800,
    granularityMs: 100,
  });
});
