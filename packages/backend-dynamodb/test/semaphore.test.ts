import { semaphoreSuite } from '@baton/testkit';
import { it } from 'vitest';
import { dynamoHarnessFactory } from './harness.js';

// As in the conformance run: a crashed holder's slot is taken once a contender has seen its record unchanged
// for the lease duration plus a tenth; the first look comes up to one polling interval after the crash.
const TTL_MS = 1_000;

semaphoreSuite(it, dynamoHarnessFactory('semaphore', TTL_MS), {
  expiryBoundMs: TTL_MS * 1.1 + TTL_MS / 2,
  lockDelayMs: 300,
  granularityMs: 50,
});
