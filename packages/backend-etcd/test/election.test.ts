import { leaderElectionSuite } from '@baton/testkit';
import { describe, it } from 'vitest';
import { etcdHarnessFactory, haveEtcd } from './harness.js';

const TTL_MS = 1_000;

describe.skipIf(!haveEtcd)('leaderElectionSuite on a real etcd', () => {
  leaderElectionSuite(it, etcdHarnessFactory('election', TTL_MS), {
    expiryBoundMs: TTL_MS + 1_000,
    granularityMs: 50,
  });
});
