import type { LockHarnessFactory, TestFn } from '../lock-suite/types.js';
import { electionContentionTests } from './contention.js';
import { electionDiscoveryTests } from './discovery.js';
import { electionFairnessTests } from './fairness.js';
import { electionHandoverTests } from './handover.js';
import { electionObserveTests } from './observe.js';
import { runWhileLeaderTests } from './run-while-leader.js';
import type { ElectionSuiteOptions } from './types.js';

export { type BeliefInterval, BeliefTracker } from './tracker.js';
export type * from './types.js';
export {
  electionContentionTests,
  electionDiscoveryTests,
  electionFairnessTests,
  electionHandoverTests,
  electionObserveTests,
  runWhileLeaderTests,
};

/**
 * Leader-election conformance: `Election` and `runWhileLeader` from `@baton/core` running on your backend.
 * Takes the same harness factory as `lockProviderSuite` (and its options object):
 *
 * ```ts
 * import { it } from 'vitest';
 * import { leaderElectionSuite } from '@baton/testkit';
 * leaderElectionSuite(it, async () => makeHarness(), { expiryBoundMs: 1_000 });
 * ```
 *
 * What it checks: one leader at a time under contention, resignations and crashes (a participant is never
 * elected while another one's leadership signal is live, terms strictly increase); handover within one
 * watch round trip after `resign()` and within `expiryBoundMs` after a crash; a leader cut off from the
 * backend stops believing within its TTL; on a backend with the `fairQueue` capability, campaigners take turns
 * in arrival order; observers see terms in order and end on the current leader;
 * `proclaim` changes the published value but not the term; `leader()` is `null` when nobody leads; an
 * aborted campaign rejects with `ABORTED` and leaves no lock behind; `runWhileLeader` steps down cleanly.
 */
export function leaderElectionSuite(
  test: TestFn,
  factory: LockHarnessFactory,
  options: ElectionSuiteOptions,
): void {
  electionDiscoveryTests(test, factory, options);
  electionContentionTests(test, factory, options);
  electionFairnessTests(test, factory, options);
  electionHandoverTests(test, factory, options);
  electionObserveTests(test, factory, options);
  runWhileLeaderTests(test, factory, options);
}
