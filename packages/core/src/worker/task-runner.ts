import { backoffDelay } from '../backoff.js';
import { sleep } from '../clock.js';
import { BatonError, TimeoutError } from '../errors.js';
import type { Lease } from '../lock.js';
import type { CompleteResult, FailResult, Task } from '../task-source.js';
import { describeError, type TaskContext, toTaskFailure } from './handler.js';
import type { InFlight, WorkerRuntime } from './runtime.js';

type Settled =
  | { readonly kind: 'resolved'; readonly value: unknown }
  | { readonly kind: 'rejected'; readonly error: unknown }
  | { readonly kind: 'abandoned' };

/**
 * Runs a claimed task in the background: the handler under a signal that aborts on lease loss, timeout or
 * hard stop; then the fenced outcome write; then the lease release. Returns its {@link InFlight} entry, which
 * is registered in `rt.inFlight` until done. `onDone` runs once everything is finished.
 */
export function startTask(
  rt: WorkerRuntime,
  lease: Lease,
  task: Task,
  lockKey: string,
  onDone: () => void,
): InFlight {
  const controller = new AbortController();
  const entry: InFlight = {
    taskId: task.id,
    abort: (reason) => {
      if (!controller.signal.aborted) controller.abort(reason);
    },
    done: runTask(rt, lease, task, lockKey, controller)
      .catch((error: unknown) => rt.emitError(error, 'write', task.id))
      .finally(() => {
        rt.inFlight.delete(task.id);
        rt.stats.inFlight = rt.inFlight.size;
        onDone();
      }),
  };
  rt.inFlight.set(task.id, entry);
  rt.stats.inFlight = rt.inFlight.size;
  return entry;
}

async function runTask(
  rt: WorkerRuntime,
  lease: Lease,
  task: Task,
  lockKey: string,
  controller: AbortController,
): Promise<void> {
  const { options, stats } = rt;
  const { clock } = options;
  const fence = lease.fence;
  const onLeaseLost = () => {
    stats.leaseLost++;
    rt.emit('lease-lost', { taskId: task.id, fence, lockKey, reason: lease.signal.reason });
    if (!controller.signal.aborted) controller.abort(lease.signal.reason);
  };
  if (lease.signal.aborted) onLeaseLost();
  else lease.signal.addEventListener('abort', onLeaseLost, { once: true });
  const timeout = clock.setTimeout(() => {
    if (controller.signal.aborted) return;
    stats.handlerTimeouts++;
    controller.abort(
      new TimeoutError(`handler of task ${task.id} did not finish within ${options.handlerTimeoutMs} ms`),
    );
  }, options.handlerTimeoutMs);

  const startedAt = clock.monotonicNow();
  let settled: Settled;
  try {
    rt.emit('task-started', { task, fence, lockKey });
    const context: TaskContext = {
      task,
      fence,
      signal: controller.signal,
      workerId: options.id,
      lockKey,
    };
    settled = await settle(invoke(options.handler, context), controller.signal, options.abandonAfterMs, rt);
  } finally {
    clock.clearTimeout(timeout);
    lease.signal.removeEventListener('abort', onLeaseLost);
  }

  try {
    if (settled.kind === 'abandoned') {
      stats.abandonedHandlers++;
      rt.emit('handler-abandoned', { task, fence, reason: controller.signal.reason });
    }
    if (settled.kind === 'resolved') {
      await complete(rt, task, fence, settled.value, startedAt);
    } else {
      const error =
        settled.kind === 'rejected' && !controller.signal.aborted ? settled.error : controller.signal.reason;
      await fail(rt, task, fence, error, startedAt);
    }
  } finally {
    try {
      await lease.release();
    } catch (error) {
      rt.emitError(error, 'release', task.id);
    }
  }
}

function invoke(handler: (context: TaskContext) => unknown, context: TaskContext): Promise<unknown> {
  try {
    return Promise.resolve(handler(context));
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * Waits for the handler. Once `signal` aborts, waits at most `abandonAfterMs` more: a handler that ignores its
 * signal is left behind (`abandoned`) so that it cannot hold the worker hostage.
 */
function settle(
  promise: Promise<unknown>,
  signal: AbortSignal,
  abandonAfterMs: number,
  rt: WorkerRuntime,
): Promise<Settled> {
  const { clock } = rt.options;
  return new Promise<Settled>((resolve) => {
    let timer: unknown;
    const finish = (result: Settled) => {
      if (timer !== undefined) clock.clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      resolve(result);
    };
    const onAbort = () => {
      timer = clock.setTimeout(() => finish({ kind: 'abandoned' }), abandonAfterMs);
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => finish({ kind: 'resolved', value }),
      (error: unknown) => finish({ kind: 'rejected', error }),
    );
  });
}

async function complete(
  rt: WorkerRuntime,
  task: Task,
  fence: number,
  value: unknown,
  startedAt: number,
): Promise<void> {
  const { source } = rt.options;
  let result: CompleteResult | undefined;
  try {
    result = await retryWrite(rt, task.id, async (attempt) => {
      const outcome = await source.complete(task.id, fence, value);
      // A retry after a lost reply finds its own earlier write: the fence matches and the task is done.
      if (!outcome.applied && attempt > 0) {
        const current = await source.get(task.id);
        if (current?.fence === fence && current.status === 'done') return { applied: true } as const;
      }
      return outcome;
    });
  } catch (error) {
    // The source refused the result itself (a BigInt, a cycle, a function, too large): running the handler
    // again would only produce another result that cannot be stored, so the task is dead at once.
    const failure = new BatonError('HANDLER_FAILED', `result could not be stored: ${describeError(error)}`, {
      cause: error,
    });
    await fail(rt, task, fence, failure, startedAt, { retryable: false });
    return;
  }
  if (!result) return;
  if (result.applied) {
    rt.stats.completed++;
    rt.emit('task-completed', { task, fence, result: value, durationMs: elapsed(rt, startedAt) });
  } else {
    rt.stats.staleWrites++;
    rt.emit('stale-write', { taskId: task.id, fence, operation: 'complete' });
  }
}

async function fail(
  rt: WorkerRuntime,
  task: Task,
  fence: number,
  error: unknown,
  startedAt: number,
  override: { retryable?: false } = {},
): Promise<void> {
  const { source } = rt.options;
  const failure = { ...toTaskFailure(error), ...override };
  let result: FailResult | undefined;
  try {
    result = await retryWrite(rt, task.id, async (attempt) => {
      const outcome = await source.fail(task.id, fence, failure);
      if (!outcome.applied && attempt > 0) {
        const current = await source.get(task.id);
        if (current?.fence === fence && current.status === 'failed') {
          return { applied: true, status: 'failed', nextRunAt: current.runAt } as const;
        }
        if (current?.fence === fence && current.status === 'dead') {
          return { applied: true, status: 'dead' } as const;
        }
      }
      return outcome;
    });
  } catch (writeError) {
    rt.emitError(writeError, 'write', task.id);
    return;
  }
  if (!result) return;
  const durationMs = elapsed(rt, startedAt);
  if (!result.applied) {
    rt.stats.staleWrites++;
    rt.emit('stale-write', { taskId: task.id, fence, operation: 'fail' });
  } else if (result.status === 'failed') {
    rt.stats.failed++;
    rt.emit('task-failed', { task, fence, error, nextRunAt: result.nextRunAt, durationMs });
  } else {
    rt.stats.dead++;
    rt.emit('task-dead', { task, fence, error, durationMs });
  }
}

/**
 * Retries a fenced write through transport errors, with backoff, for up to `writeRetryMs` and never past a
 * hard stop. Holding the lease meanwhile keeps other workers off the task. Resolves `undefined` when it gave
 * up (the task stays `running` until the source's reclaim makes it due again); rejects with errors that
 * retrying cannot fix.
 */
async function retryWrite<R>(
  rt: WorkerRuntime,
  taskId: string,
  write: (attempt: number) => Promise<R>,
): Promise<R | undefined> {
  const { clock, writeRetryMs, retryBaseMs, random } = rt.options;
  const startedAt = clock.monotonicNow();
  for (let attempt = 0; ; attempt++) {
    try {
      return await write(attempt);
    } catch (error) {
      if (error instanceof BatonError && !error.retryable) throw error;
      rt.emitError(error, 'write', taskId);
      const delay = backoffDelay(attempt, { baseMs: retryBaseMs, maxMs: 5_000, random });
      if (rt.hardStopSignal.aborted || clock.monotonicNow() - startedAt + delay > writeRetryMs) {
        return undefined;
      }
      await sleep(delay, { clock, signal: rt.hardStopSignal }).catch(() => undefined);
    }
  }
}

function elapsed(rt: WorkerRuntime, startedAt: number): number {
  return rt.options.clock.monotonicNow() - startedAt;
}
