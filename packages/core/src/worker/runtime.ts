import type { MutableStats, WorkerErrorPhase, WorkerEvents } from './events.js';
import type { ResolvedWorkerOptions } from './options.js';
import type { Slots } from './slots.js';

/** Payload of an event without the `workerId` the worker adds. */
export type EventPayload<K extends keyof WorkerEvents> = Omit<WorkerEvents[K], 'workerId'>;

/** A task whose handler is running (or whose outcome is being written). */
export interface InFlight {
  readonly taskId: string;
  /** Aborts the handler's signal with `reason` (first reason wins). */
  abort(reason: unknown): void;
  /** Settles when the outcome is written (or given up on) and the lease released. Never rejects. */
  readonly done: Promise<void>;
}

/** What the pass and task runners share with the worker that owns them. */
export interface WorkerRuntime {
  readonly options: ResolvedWorkerOptions;
  readonly stats: MutableStats;
  readonly slots: Slots;
  /** Running tasks by id. */
  readonly inFlight: Map<string, InFlight>;
  /** Aborts when `stop()` began: take no new task. */
  readonly stopSignal: AbortSignal;
  /** Aborts when the stop grace period ran out: stop retrying writes. */
  readonly hardStopSignal: AbortSignal;
  emit<K extends keyof WorkerEvents>(event: K, payload: EventPayload<K>): void;
  emitError(error: unknown, phase: WorkerErrorPhase, taskId?: string): void;
}
