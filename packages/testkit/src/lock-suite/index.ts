import { exclusivityTests, independentKeysTests, releaseTests } from './basics.js';
import { blockingTests } from './blocking.js';
import { discoveryTests } from './discovery.js';
import { destroyTests, expiryTests, holdTests, leaseLostTests } from './expiry.js';
import { fairnessTests } from './fairness.js';
import { fencingTests } from './fencing.js';
import { fuzzTests } from './fuzz.js';
import { holderTimesTests } from './holder-times.js';
import { transportTests } from './transport.js';
import type { LockHarnessFactory, LockSuiteOptions, TestFn } from './types.js';
import { waitersTests } from './waiters.js';

export { eventually } from './context.js';
export type * from './types.js';
export {
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
  leaseLostTests,
  releaseTests,
  transportTests,
  waitersTests,
};

/**
 * The lock-provider conformance suite. Call it from a test file with your runner's test function and a
 * factory that gives a fresh {@link LockHarness} per test:
 *
 * ```ts
 * import { it } from 'vitest';
 * import { lockProviderSuite } from '@baton/testkit';
 * lockProviderSuite(it, async () => makeHarness(), { expiryBoundMs: 1_000, lockDelayMs: 300 });
 * ```
 *
 * Every group is also exported on its own (`fencingTests`, `expiryTests`, ...).
 */
export function lockProviderSuite(
  test: TestFn,
  factory: LockHarnessFactory,
  options: LockSuiteOptions,
): void {
  exclusivityTests(test, factory, options);
  independentKeysTests(test, factory, options);
  releaseTests(test, factory, options);
  expiryTests(test, factory, options);
  leaseLostTests(test, factory, options);
  destroyTests(test, factory, options);
  holdTests(test, factory, options);
  fencingTests(test, factory, options);
  discoveryTests(test, factory, options);
  blockingTests(test, factory, options);
  fairnessTests(test, factory, options);
  holderTimesTests(test, factory, options);
  waitersTests(test, factory, options);
  fuzzTests(test, factory, options);
  transportTests(test, factory, options);
}
