import type { LayoutGuard } from '../lease-layout.js';
import type { InFlightTasks } from './in-flight.js';
import type { KindLimits } from './limits.js';
import type { Observation } from './observations.js';
import type { ResolvedWorkerOptions } from './options.js';
import type { Slots } from './slots.js';

/** What a worker gives the lease mode it runs: its options, shared resources, and where to report. */
export interface WorkerEnv {
  readonly options: ResolvedWorkerOptions;
  /**
   * A random id of this Worker object, kept across its lock sessions: tells keys its own earlier (lost)
   * sessions still hold from keys of another process that uses the same worker id.
   */
  readonly instance: string;
  /** `concurrency` slots: one per running handler. */
  readonly handlerSlots: Slots;
  readonly inFlight: InFlightTasks;
  /** Task mode: the per-kind concurrency limits (`limits`). */
  readonly limits: KindLimits;
  /** Aborts when `stop()` began: take no new task. */
  readonly stopSignal: AbortSignal;
  /** Aborts when the stop's grace period ran out: handlers are aborted, writes are no longer retried. */
  readonly hardStopSignal: AbortSignal;
  /** The lease layout the worker started under, for per-task writes (absent: the source has no layouts). */
  readonly guard: LayoutGuard | undefined;
  /** Hands what happened to the worker, which counts it and emits the event. */
  observe(observation: Observation): void;
  /** The source refused a write because the table's lease layout changed: the worker stops with an error. */
  layoutChanged(): void;
}
