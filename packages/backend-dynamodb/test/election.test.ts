import { leaderElectionSuite } from '@baton/testkit';
import { describe, it } from 'vitest';
import { dynamoHarnessFactory } from './harness.js';

const TTL_MS = 1_000;

for (const fenceMode of ['counter', 'epoch'] as const) {
  describe(`${fenceMode} fence mode`, () => {
    leaderElectionSuite(it, dynamoHarnessFactory(`election_${fenceMode}`, TTL_MS, { fenceMode }), {
      expiryBoundMs: TTL_MS * 1.1 + TTL_MS / 2,
      granularityMs: 50,
    });
  });
}
