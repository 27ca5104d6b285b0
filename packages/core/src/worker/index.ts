export { type Listener, TypedEmitter } from './emitter.js';
export type {
  PassOutcome,
  PassSummary,
  WorkerErrorPhase,
  WorkerEventName,
  WorkerEvents,
  WorkerStats,
} from './events.js';
export {
  describeError,
  invalidTask,
  isPermanentFailure,
  parsePayload,
  type TaskContext,
  type TaskHandler,
  TaskInvalidError,
} from './handler.js';
export type { RunningTask } from './in-flight.js';
export {
  type BucketOptions,
  DEFAULT_HEARTBEAT_EVERY_MS,
  type LeaderOptions,
  type StartStrategy,
  type WorkerOptions,
  workerDurationBounds,
} from './options.js';
export { checkSchedule, isTimeZone, type Schedule } from './schedule.js';
export {
  exitCodeOfSignal,
  onProcessSignals,
  type SignalListener,
  type SignalTarget,
  type StopOnSignalsOptions,
  type StopOptions,
} from './stop.js';
export { Worker } from './worker.js';
