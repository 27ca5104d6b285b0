import type { ClaimResult, Task } from '../task-source.js';
import type { MutableStats, PassSummary, WorkerErrorPhase, WorkerEvents } from './events.js';

/**
 * Something a dispatcher or a task run saw happen. They hand observations to the worker, which alone turns
 * them into counters ({@link WorkerStats}) and events ({@link applyObservation}): the modes never touch
 * shared state.
 */
export type Observation =
  | { readonly type: 'pass-started'; readonly pass: number; readonly start: number }
  | { readonly type: 'pass-finished'; readonly summary: PassSummary }
  | {
      readonly type: 'lock-attempt';
      readonly taskId: string;
      readonly lockKey: string;
      readonly acquired: boolean;
    }
  | { readonly type: 'hop' }
  | { readonly type: 'limit-skipped'; readonly taskId: string; readonly kind: string }
  | {
      readonly type: 'claim-skipped';
      readonly taskId: string;
      readonly fence: number;
      readonly reason: Extract<ClaimResult, { claimed: false }>['reason'];
    }
  | { readonly type: 'task-started'; readonly task: Task; readonly fence: number; readonly lockKey: string }
  | {
      readonly type: 'task-completed';
      readonly task: Task;
      readonly fence: number;
      readonly result: unknown;
      readonly durationMs: number;
    }
  | {
      readonly type: 'task-failed';
      readonly task: Task;
      readonly fence: number;
      readonly error: unknown;
      readonly nextRunAt: Date;
      readonly durationMs: number;
    }
  | {
      readonly type: 'task-dead';
      readonly task: Task;
      readonly fence: number;
      readonly error: unknown;
      readonly durationMs: number;
    }
  | {
      readonly type: 'stale-write';
      readonly taskId: string;
      readonly fence: number;
      readonly operation: 'complete' | 'fail';
    }
  | {
      readonly type: 'lease-lost';
      readonly taskId: string;
      readonly fence: number;
      readonly lockKey: string;
      readonly reason: unknown;
    }
  | { readonly type: 'handler-timeout'; readonly taskId: string }
  | {
      readonly type: 'handler-abandoned';
      readonly task: Task;
      readonly fence: number;
      readonly reason: unknown;
    }
  | {
      readonly type: 'bucket-acquired';
      readonly bucket: number;
      readonly fence: number;
      readonly lockKey: string;
    }
  | {
      readonly type: 'bucket-released';
      readonly bucket: number;
      readonly fence: number;
      readonly reason: 'rebalance' | 'stop';
    }
  | {
      readonly type: 'bucket-lost';
      readonly bucket: number;
      readonly fence: number;
      readonly reason: unknown;
    }
  | { readonly type: 'claim-batch'; readonly claimed: number }
  | { readonly type: 'settle-batch' }
  | {
      readonly type: 'error';
      readonly error: unknown;
      readonly phase: WorkerErrorPhase;
      readonly taskId?: string | undefined;
    };

/** An event to emit, without the `workerId` the worker adds. */
export type PendingEvent = {
  [K in keyof WorkerEvents]: { readonly name: K; readonly payload: Omit<WorkerEvents[K], 'workerId'> };
}[keyof WorkerEvents];

/** Counts `observation` into `stats` and returns the event it stands for, if any. */
export function applyObservation(stats: MutableStats, observation: Observation): PendingEvent | undefined {
  switch (observation.type) {
    case 'pass-started':
      stats.passes++;
      return { name: 'pass-started', payload: { pass: observation.pass, start: observation.start } };
    case 'pass-finished':
      return { name: 'pass-finished', payload: observation.summary };
    case 'lock-attempt':
      stats.lockAttempts++;
      if (observation.acquired) {
        stats.acquired++;
        return undefined;
      }
      stats.notAcquired++;
      return {
        name: 'skipped-locked',
        payload: { taskId: observation.taskId, lockKey: observation.lockKey },
      };
    case 'hop':
      stats.hops++;
      return undefined;
    case 'limit-skipped': {
      const { taskId, kind } = observation;
      stats.limitSkipped++;
      return { name: 'limit-skipped', payload: { taskId, kind } };
    }
    case 'claim-skipped': {
      const { taskId, fence, reason } = observation;
      stats.claimSkipped++;
      return { name: 'claim-skipped', payload: { taskId, fence, reason } };
    }
    case 'task-started': {
      const { task, fence, lockKey } = observation;
      stats.claimed++;
      return { name: 'task-started', payload: { task, fence, lockKey } };
    }
    case 'task-completed': {
      const { task, fence, result, durationMs } = observation;
      stats.completed++;
      return { name: 'task-completed', payload: { task, fence, result, durationMs } };
    }
    case 'task-failed': {
      const { task, fence, error, nextRunAt, durationMs } = observation;
      stats.failed++;
      return { name: 'task-failed', payload: { task, fence, error, nextRunAt, durationMs } };
    }
    case 'task-dead': {
      const { task, fence, error, durationMs } = observation;
      stats.dead++;
      return { name: 'task-dead', payload: { task, fence, error, durationMs } };
    }
    case 'stale-write': {
      const { taskId, fence, operation } = observation;
      stats.staleWrites++;
      return { name: 'stale-write', payload: { taskId, fence, operation } };
    }
    case 'lease-lost': {
      const { taskId, fence, lockKey, reason } = observation;
      stats.leaseLost++;
      return { name: 'lease-lost', payload: { taskId, fence, lockKey, reason } };
    }
    case 'handler-timeout':
      stats.handlerTimeouts++;
      return undefined;
    case 'handler-abandoned': {
      const { task, fence, reason } = observation;
      stats.abandonedHandlers++;
      return { name: 'handler-abandoned', payload: { task, fence, reason } };
    }
    case 'bucket-acquired': {
      const { bucket, fence, lockKey } = observation;
      stats.bucketsHeld++;
      stats.bucketsAcquired++;
      return { name: 'bucket-acquired', payload: { bucket, fence, lockKey } };
    }
    case 'bucket-released': {
      const { bucket, fence, reason } = observation;
      stats.bucketsHeld--;
      stats.bucketsReleased++;
      return { name: 'bucket-released', payload: { bucket, fence, reason } };
    }
    case 'bucket-lost': {
      const { bucket, fence, reason } = observation;
      stats.bucketsHeld--;
      stats.bucketsLost++;
      return { name: 'bucket-lost', payload: { bucket, fence, reason } };
    }
    case 'claim-batch':
      stats.claimBatches++;
      return undefined;
    case 'settle-batch':
      stats.settleBatches++;
      return undefined;
    case 'error': {
      const { error, phase, taskId } = observation;
      stats.errors++;
      return { name: 'error', payload: taskId === undefined ? { error, phase } : { error, phase, taskId } };
    }
  }
}
