import type { TaskSource } from '@baton/core';

/** Settings the suite asks the factory to configure the source with (each case may override some). */
export interface TaskSourceSettings {
  /** `due()` lists a `running` task again once its claim is this old. */
  reclaimAfterMs: number;
  /** Retry delay after a retryable failure: about baseMs·2^(attempts−1), never above maxMs. */
  backoff: { baseMs: number; maxMs: number };
  /** `maxAttempts` of tasks enqueued without one. */
  defaultMaxAttempts: number;
  /**
   * When set, `due()` must list only tasks created within this many ms before now (the source's clock).
   * Only the creation-window cases set it, and only when {@link TaskSuiteOptions.creationWindow} is on.
   */
  createdWithinMs?: number;
}

/**
 * One source under test plus the hooks the suite needs to move it through time. The factory creates a fresh
 * one per case (a fresh schema, table or instance), so cases never see each other's tasks.
 */
export interface TaskSourceHarness {
  /** The source under test, configured with the settings the factory was given. */
  source: TaskSource;
  /**
   * Lets `ms` of the source's time pass for the given tasks: their creation time, due time and latest claim
   * must all end up at least `ms` further in the past. A database source moves those rows' timestamps back;
   * a source with an injectable clock may instead advance the clock (which ages every task, also fine).
   */
  elapse(ms: number, taskIds: readonly string[]): Promise<void>;
  /**
   * Damages the stored task so that the source cannot read it back (a NULL kind written by another program,
   * say). Needed only when {@link TaskSuiteOptions.invalidRows} is on.
   */
  corrupt?(taskId: string): Promise<void>;
  /** Releases everything the harness holds. The suite calls it after every case. */
  close(): Promise<void>;
}

/** Creates a fresh {@link TaskSourceHarness} with the given settings. */
export type TaskSourceFactory = (settings: TaskSourceSettings) => Promise<TaskSourceHarness>;

/** What the source supports beyond the contract's core, and how big the suite's cases are. */
export interface TaskSuiteOptions {
  /** Run the creation-window cases (the source honours {@link TaskSourceSettings.createdWithinMs}). */
  creationWindow?: boolean;
  /** Run the undecodable-row cases (the harness implements {@link TaskSourceHarness.corrupt}). */
  invalidRows?: boolean;
  /** Run the bucket-lease cases (the source is a `BucketTaskSource`: layouts, `claimBucket`, `settle`). */
  bucketLeases?: boolean;
  /** Tasks the streaming cases enqueue. Default 60. */
  streamSize?: number;
  /** Time budget of one case, ms. Default 30 000. */
  timeoutMs?: number;
}
