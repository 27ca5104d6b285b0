import type { LockHarnessFactory, TestFn } from '../lock-suite/types.js';
import { semaphoreAbortTests } from './abort.js';
import { semaphoreBasicTests } from './basics.js';
import { semaphoreContentionTests } from './contention.js';
import { semaphoreExpiryTests } from './expiry.js';
import { semaphoreFairnessTests } from './fairness.js';
import { semaphoreFenceTests } from './fences.js';
import { semaphoreLostPermitTests } from './lost.js';
import { semaphoreMismatchTests } from './mismatch.js';
import type { SemaphoreSuiteOptions } from './types.js';

export { PermitTracker } from './tracker.js';
export type * from './types.js';
export {
  semaphoreAbortTests,
  semaphoreBasicTests,
  semaphoreContentionTests,
  semaphoreExpiryTests,
  semaphoreFairnessTests,
  semaphoreFenceTests,
  semaphoreLostPermitTests,
  semaphoreMismatchTests,
};

/**
 * Semaphore conformance: `semaphore()` from `@baton/core` (or your own, `options.semaphore`) running on your
 * backend. Takes the same harness factory as `lockProviderSuite` (and its options object):
 *
 * ```ts
 * import { it } from 'vitest';
 * import { semaphoreSuite } from '@baton/testkit';
 * semaphoreSuite(it, async () => makeHarness(), { expiryBoundMs: 1_000, lockDelayMs: 300 });
 * ```
 *
 * What it checks: never more than `limit` valid permits under contention from blocking and non-blocking
 * contenders with crashes (checked by an independent tracker), fences that rise per slot; a crashed
 * holder's permit is free again within `expiryBoundMs`, also for a waiter refused by a lock-delay; a
 * different limit for the same name is refused with `CONFIG_INVALID`; an aborted or timed-out waiter
 * leaves no permit behind; releasing a lost permit never frees the slot for its new holder; on a backend with
 * the `fairQueue` capability, blocking waiters get permits in the order they started waiting.
 */
export function semaphoreSuite(
  test: TestFn,
  factory: LockHarnessFactory,
  options: SemaphoreSuiteOptions,
): void {
  semaphoreBasicTests(test, factory, options);
  semaphoreContentionTests(test, factory, options);
  semaphoreFenceTests(test, factory, options);
  semaphoreExpiryTests(test, factory, options);
  semaphoreMismatchTests(test, factory, options);
  semaphoreAbortTests(test, factory, options);
  semaphoreLostPermitTests(test, factory, options);
  semaphoreFairnessTests(test, factory, options);
}
