import { lockProviderSuite } from '@baton/testkit';
import { describe, it } from 'vitest';
import { pgHarnessFactory } from './harness.js';

// Long enough that a renewal queued behind other statements on PGlite's one session still lands on a
// loaded machine. Expiry is the database's clock: a crashed holder's key is free TTL after its last renewal.
const TTL_MS = 1_500;
// The database judges expiry and lock-delay on its own clock; the suite times them from when the client
// *sees* a change, one read's round trip (plus its 20 ms poll) later. On a loaded 2-core machine that
// round trip alone can exceed 50 ms, so the timing slack is two round trips' worth, not a timer's.
const GRANULARITY_MS = 100;

describe('lockProviderSuite on PostgreSQL (PGlite, or the server at DATABASE_URL)', () => {
  lockProviderSuite(it, pgHarnessFactory('locks_suite', TTL_MS), {
    expiryBoundMs: TTL_MS + 500,
    lockDelayMs: 800,
    granularityMs: GRANULARITY_MS,
  });
});
