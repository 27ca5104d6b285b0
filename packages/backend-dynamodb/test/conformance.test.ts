import {
  blockingTests,
  destroyTests,
  discoveryTests,
  exclusivityTests,
  expiryTests,
  fairnessTests,
  fencingTests,
  fuzzTests,
  holderTimesTests,
  holdTests,
  independentKeysTests,
  type LockSuiteOptions,
  leaseLostTests,
  releaseTests,
  transportTests,
  waitersTests,
} from '@baton/testkit';
import { describe, it } from 'vitest';
import { dynamoHarnessFactory } from './harness.js';

// The whole of lockProviderSuite, group by group, so the fuzz group can run with a longer lease; once per fence
// mode. `counter` mode (the default) keeps an item per key ever locked, and its fences need items never to be
// deleted: its run skips the case that counts what releases leave behind and the key-deletion case. `epoch`
// mode deletes released keys and keeps fences rising across deletion: it runs every case.
const TTL_MS = 1_000;
// A crashed holder's key is taken once a contender has seen its record unchanged for the lease duration plus
// a tenth (the default margin); the contender's first look comes up to one polling interval after the crash.
const options: LockSuiteOptions = {
  expiryBoundMs: TTL_MS * 1.1 + TTL_MS / 2,
  lockDelayMs: 300,
  granularityMs: 50,
};

for (const fenceMode of ['counter', 'epoch'] as const) {
  describe(`${fenceMode} fence mode`, () => {
    const harness = dynamoHarnessFactory(fenceMode, TTL_MS, { fenceMode });
    const modeOptions: LockSuiteOptions =
      fenceMode === 'counter' ? { ...options, skipKeyDeletion: true, retainsReleasedKeys: true } : options;
    exclusivityTests(it, harness, modeOptions);
    independentKeysTests(it, harness, modeOptions);
    releaseTests(it, harness, modeOptions);
    expiryTests(it, harness, modeOptions);
    leaseLostTests(it, harness, modeOptions);
    destroyTests(it, harness, modeOptions);
    holdTests(it, harness, modeOptions);
    fencingTests(it, harness, modeOptions);
    discoveryTests(it, harness, modeOptions);
    blockingTests(it, harness, modeOptions);
    fairnessTests(it, harness, modeOptions);
    holderTimesTests(it, harness, modeOptions);
    waitersTests(it, harness, modeOptions);
    transportTests(it, harness, modeOptions);
  });
}

// The fuzz group spins five sessions on three keys as fast as the machine allows, all in this one process
// next to dynalite. On a loaded two-core machine requests then take hundreds of milliseconds, and a session
// that cannot renew within its lease is (correctly) lost; nothing in this group waits for an expiry, so a
// longer lease costs no time and keeps the group about exclusivity and fences.
const FUZZ_TTL_MS = 4_000;
for (const fenceMode of ['counter', 'epoch'] as const) {
  describe(`${fenceMode} fence mode`, () => {
    fuzzTests(it, dynamoHarnessFactory(`fuzz_${fenceMode}`, FUZZ_TTL_MS, { fenceMode }), {
      ...options,
      expiryBoundMs: FUZZ_TTL_MS * 1.6,
    });
  });
}
