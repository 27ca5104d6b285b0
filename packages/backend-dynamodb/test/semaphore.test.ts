import { semaphoreSuite } from '@baton/testkit';
import { describe, it } from 'vitest';
import { dynamoHarnessFactory } from './harness.js';

// A crashed holder's slot is taken once a contender has seen its record unchanged for the lease duration plus
// a tenth; the first look comes up to one polling interval after the crash. A semaphore case makes many more
// requests than a lock case (every slot, then the mismatch reads), all in this process next to dynalite: on a
// loaded two-core machine a one-second lease is then lost now and then, so the leases here are two seconds.
const TTL_MS = 2_000;

// The default (counter) fence mode only: a semaphore is built on tryAcquire and release alone, which the
// conformance suite checks in both fence modes (the suite costs about 11 s per mode on this machine).
describe('counter fence mode', () => {
  semaphoreSuite(it, dynamoHarnessFactory('semaphore_counter', TTL_MS, { fenceMode: 'counter' }), {
    expiryBoundMs: TTL_MS * 1.1 + TTL_MS / 2,
    lockDelayMs: 300,
    granularityMs: 50,
  });
});
