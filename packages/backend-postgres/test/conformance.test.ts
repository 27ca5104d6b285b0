import { lockProviderSuite } from '@baton/testkit';
import { describe, it } from 'vitest';
import { pgHarnessFactory } from './harness.js';

// Long enough that a renewal queued behind other statements on PGlite's one session still lands on a
// loaded machine. Expiry is the database's clock: a crashed holder's key is free TTL after its last renewal.
const TTL_MS = 1_500;

describe('lockProviderSuite on PostgreSQL (PGlite, or the server at DATABASE_URL)', () => {
  lockProviderSuite(it, pgHarnessFactory('locks_suite', TTL_MS), {
    expiryBoundMs: TTL_MS + 500,
    lockDelayMs: 800,
    granularityMs: 50,
  });
});
