import { lockProviderSuite } from '@baton/testkit';
import { describe, it } from 'vitest';
import { etcdHarnessFactory, haveEtcd } from './harness.js';

// etcd leases count whole seconds and the test server (10 ms heartbeats) grants one second. A crashed
// holder's key goes when etcd's lessor notices the expiry: it looks every 500 ms.
const TTL_MS = 1_000;

describe.skipIf(!haveEtcd)('lockProviderSuite on a real etcd', () => {
  lockProviderSuite(it, etcdHarnessFactory('suite', TTL_MS), {
    expiryBoundMs: TTL_MS + 1_000,
    lockDelayMs: 1_000,
    granularityMs: 50,
  });
});
