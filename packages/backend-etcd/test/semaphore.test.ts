import { semaphoreSuite } from '@baton/testkit';
import { describe, it } from 'vitest';
import { etcdHarnessFactory, haveEtcd } from './harness.js';

// As in the conformance run: one-second leases, and etcd's lessor looks for expired leases every 500 ms.
const TTL_MS = 1_000;

describe.skipIf(!haveEtcd)('semaphoreSuite on a real etcd', () => {
  semaphoreSuite(it, etcdHarnessFactory('semaphore', TTL_MS), {
    expiryBoundMs: TTL_MS + 1_000,
    lockDelayMs: 1_000,
    granularityMs: 50,
  });
});
