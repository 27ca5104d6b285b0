import { lockProviderSuite } from '@baton/testkit';
import { it } from 'vitest';
import { dynamoHarnessFactory } from './harness.js';

const TTL_MS = 1_000;

// A crashed holder's key is taken once a contender has seen its record unchanged for the lease duration plus
// a tenth (the default margin); the contender's first look comes up to one polling interval after the crash.
lockProviderSuite(it, dynamoHarnessFactory('suite', TTL_MS), {
  expiryBoundMs: TTL_MS * 1.1 + TTL_MS / 2,
  lockDelayMs: 300,
  granularityMs: 50,
});
