import type { TestFn } from '../lock-suite/types.js';
import { bucketTests } from './buckets.js';
import { claimTests } from './claim.js';
import { claimBucketsTests } from './claim-buckets.js';
import { enqueueTests } from './enqueue.js';
import { heartbeatTests } from './heartbeat.js';
import { invalidRowTests } from './invalid.js';
import { raceTests } from './race.js';
import { retryTests } from './retry.js';
import { dueTests } from './streaming.js';
import type { TaskSourceFactory, TaskSourceHarness, TaskSuiteOptions } from './types.js';
import { fencedWriteTests } from './writes.js';

export { DEFAULT_SETTINGS as defaultTaskSourceSettings } from './context.js';
export type * from './types.js';
export {
  bucketTests,
  claimBucketsTests,
  claimTests,
  dueTests,
  enqueueTests,
  fencedWriteTests,
  heartbeatTests,
  invalidRowTests,
  raceTests,
  retryTests,
};

/**
 * The task-source conformance suite: enqueue (single, batch, idempotency keys), claim fencing, fenced
 * complete/fail, retries with backoff and `dead`, the streaming order of `due()` (every due task exactly once
 * per pass from any start, wrap-around, pages), the races fencing exists for, heartbeats (for sources that have
 * them), and (optionally) the creation
 * window, unreadable rows and the bucket-lease operations of a `BucketTaskSource`.
 *
 * Call it from a test file with your runner's test function and a factory that gives a fresh
 * {@link TaskSourceHarness} per case:
 *
 * ```ts
 * import { it } from 'vitest';
 * import { taskSourceSuite } from '@baton/testkit';
 * taskSourceSuite(it, async (settings) => {
 *   const source = new MyTaskSource({ reclaimAfterMs: settings.reclaimAfterMs, ... });
 *   return { source, elapse: (ms, ids) => ..., close: () => source.close() };
 * });
 * ```
 *
 * Every group is also exported on its own (`claimTests`, `dueTests`, ...).
 */
export function taskSourceSuite(
  test: TestFn,
  factory: TaskSourceFactory,
  options: TaskSuiteOptions = {},
): void {
  enqueueTests(test, factory, options);
  claimTests(test, factory, options);
  fencedWriteTests(test, factory, options);
  retryTests(test, factory, options);
  dueTests(test, factory, options);
  raceTests(test, factory, options);
  heartbeatTests(test, factory, options);
  if (options.invalidRows) invalidRowTests(test, factory, options);
  if (options.bucketLeases) {
    bucketTests(test, factory, options);
    claimBucketsTests(test, factory, options);
  }
}
