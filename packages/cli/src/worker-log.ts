import { describeError, truncateErrorMessage, type Worker } from '@baton/core';
import type { Logger } from './logger.js';

/** Logs every event of a running worker at its level: progress at info, trouble at warn and error. */
export function logWorkerEvents(worker: Worker, log: Logger): void {
  worker.on('leader-elected', (e) => log.info({ leaderKey: e.key, term: e.term }, 'leader elected'));
  worker.on('leader-ended', (e) =>
    log.info(
      {
        leaderKey: e.key,
        term: e.term,
        ...(e.reason === undefined ? {} : { reason: logText(e.reason) }),
      },
      'leadership ended',
    ),
  );
  worker.on('session-opened', (e) => log.info({ sessionId: e.sessionId }, 'lock session opened'));
  worker.on('session-lost', (e) =>
    log.warn(
      { sessionId: e.sessionId, reason: logText(e.reason) },
      'lock session lost; running handlers aborted',
    ),
  );
  worker.on('task-started', (e) =>
    log.debug(
      { taskId: e.task.id, kind: e.task.kind, fence: e.fence, attempt: e.task.attempts },
      'task started',
    ),
  );
  worker.on('task-completed', (e) =>
    log.info(
      { taskId: e.task.id, kind: e.task.kind, fence: e.fence, durationMs: Math.round(e.durationMs) },
      'task completed',
    ),
  );
  worker.on('task-failed', (e) =>
    log.warn(
      {
        taskId: e.task.id,
        kind: e.task.kind,
        fence: e.fence,
        err: logText(e.error),
        nextRunAt: e.nextRunAt,
      },
      'task failed; will retry',
    ),
  );
  worker.on('task-dead', (e) =>
    log.error({ taskId: e.task.id, kind: e.task.kind, fence: e.fence, err: logText(e.error) }, 'task dead'),
  );
  worker.on('claim-skipped', (e) =>
    log.debug({ taskId: e.taskId, fence: e.fence, reason: e.reason }, 'claim skipped'),
  );
  worker.on('skipped-locked', (e) => log.trace({ taskId: e.taskId }, 'locked by another worker'));
  worker.on('limit-skipped', (e) => log.trace({ taskId: e.taskId, kind: e.kind }, 'kind at its limit'));
  worker.on('stale-write', (e) =>
    log.warn(
      { taskId: e.taskId, fence: e.fence, operation: e.operation },
      'stale write rejected (a newer fence exists)',
    ),
  );
  worker.on('lease-lost', (e) =>
    log.warn({ taskId: e.taskId, fence: e.fence, reason: logText(e.reason) }, 'lease lost; handler aborted'),
  );
  worker.on('handler-abandoned', (e) =>
    log.error({ taskId: e.task.id, fence: e.fence }, 'handler ignored its aborted signal; abandoned'),
  );
  worker.on('pass-finished', (e) =>
    log.debug(
      {
        pass: e.pass,
        outcome: e.outcome,
        seen: e.seen,
        lockAttempts: e.lockAttempts,
        claimed: e.claimed,
        hops: e.hops,
        durationMs: Math.round(e.durationMs),
      },
      'pass finished',
    ),
  );
  worker.on('error', (e) =>
    log.warn({ phase: e.phase, taskId: e.taskId, err: logText(e.error) }, 'worker error (retrying)'),
  );
  worker.on('bucket-acquired', (e) => log.info({ bucket: e.bucket, fence: e.fence }, 'bucket acquired'));
  worker.on('bucket-released', (e) =>
    log.info({ bucket: e.bucket, fence: e.fence, reason: e.reason }, 'bucket handed back'),
  );
  worker.on('bucket-lost', (e) =>
    log.warn(
      { bucket: e.bucket, fence: e.fence, reason: logText(e.reason) },
      'bucket lease lost; its handlers aborted',
    ),
  );
  worker.on('stopped', (e) => log.info({ stats: e.stats }, 'worker stopped'));
}

/** An error as one log field, cut to `MAX_ERROR_MESSAGE_LENGTH` characters (a handler may throw megabytes). */
export function logText(error: unknown): string {
  return truncateErrorMessage(describeError(error));
}
