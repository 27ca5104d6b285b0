import { it } from 'vitest';
import { leaderElectionSuite, memoryHarness } from '../src/index.js';

leaderElectionSuite(it, async () => memoryHarness({ ttlMs: 300 }), {
  expiryBoundMs: 300,
  granularityMs: 20,
});
