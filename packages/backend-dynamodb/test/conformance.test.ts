import {
  blockingTests,
  destroyTests,
  discoveryTests,
  exclusivityTests,
  expiryTests,
  fairnessTests,
  fencingTests,
  fuzzTests,
  holdTests,
  independentKeysTests,
  type LockSuiteOptions,
  leaseLostTests,
  releaseTests,
  transportTests,
} from '@baton/testkit';
import { describe, it } from 'vitest';
import { dynamoHarnessFactory } from './harness.js';

// The whole of lockProviderSuite, group by group, so the fuzz group can run with a longer lease. The default
// fence mode (`counter`) needs lock items never to be deleted, so its run skips the key-deletion case; the
// fencing group runs once more in `epoch` mode, which keeps fences increasing across deletion too, and so
// does the fairness group (the line's grants then take the epoch-mode conditions).
const TTL_MS = 1_000;
const harness = dynamoHarnessFactory('suite', TTL_MS);
// A crashed holder's key is taken once a contender has seen its record unchanged for the lease duration plus
// a tenth (the default margin); the contender's first look comes up to one polling interval after the crash.
const options: LockSuiteOptions = {
  expiryBoundMs: TTL_MS * 1.1 + TTL_MS / 2,
  lockDelayMs: 300,
  granularityMs: 50,
  skipKeyDeletion: true,
  retainsReleasedKeys: true,
};

exclusivityTests(it, harness, options);
independentKeysTests(it, harness, options);
releaseTests(it, harness, options);
expiryTests(it, harness, options);
leaseLostTests(it, harness, options);
destroyTests(it, harness, options);
holdTests(it, harness, options);
fencingTests(it, harness, options);
describe('epoch fence mode', () => {
  const epochHarness = dynamoHarnessFactory('epoch', TTL_MS, { fenceMode: 'epoch' });
  fencingTests(it, epochHarness, { ...options, skipKeyDeletion: false });
  fairnessTests(it, epochHarness, options);
});
discoveryTests(it, harness, options);
blockingTests(it, harness, options);
fairnessTests(it, harness, options);
transportTests(it, harness, options);

// The fuzz group spins five sessions on three keys as fast as the machine allows, all in this one process
// next to dynalite. On a loaded two-core machine requests then take hundreds of milliseconds, and a session
// that cannot renew within its lease is (correctly) lost; nothing in this group waits for an expiry, so a
// longer lease costs no time and keeps the group about exclusivity and fences.
const FUZZ_TTL_MS = 4_000;
fuzzTests(it, dynamoHarnessFactory('fuzz', FUZZ_TTL_MS), { ...options, expiryBoundMs: FUZZ_TTL_MS * 1.6 });
