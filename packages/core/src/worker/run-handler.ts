import { TimeoutError } from '../errors.js';
import type { Task } from '../task-source.js';
import type { WorkerEnv } from './env.js';
import type { TaskContext } from './handler.js';
import { type LazyAbort, onSignalAbort } from './lazy-abort.js';

/** How a handler ended. */
export type HandlerResult =
  | { readonly kind: 'resolved'; readonly value: unknown }
  /** It threw, or its signal aborted (lease lost, timeout, hard stop); `error` says why. */
  | { readonly kind: 'failed'; readonly error: unknown };

/** One handler invocation: the task as claimed, its fence and lock key, and what ends it early. */
export interface HandlerRun {
  readonly task: Task;
  readonly fence: number;
  readonly lockKey: string;
  /** Aborts when the lease the task runs under is lost. */
  readonly leaseSignal: AbortSignal;
  /** Aborts the handler from outside (session lost, hard stop): the worker's in-flight registry calls it. */
  readonly controller: LazyAbort;
  /** The permit of a limited kind the task runs under. */
  readonly permit?: { readonly key: string; readonly fence: number } | null;
}

/**
 * Runs the handler for one claimed task under a signal that aborts on lease loss, on `handlerTimeoutMs` and
 * through `run.controller`. Once the signal aborted, waits at most `abandonAfterMs` for the handler: one that
 * ignores its signal is left behind, so it cannot hold the worker hostage. Reports `task-started`,
 * `lease-lost`, `handler-timeout` and `handler-abandoned`; never rejects.
 */
export async function runHandler(env: WorkerEnv, run: HandlerRun): Promise<HandlerResult> {
  const { options } = env;
  const { clock } = options;
  const { task, fence, lockKey, leaseSignal, controller } = run;
  const abort = (reason: unknown) => controller.abort(reason);
  const onLeaseLost = () => {
    env.observe({ type: 'lease-lost', taskId: task.id, fence, lockKey, reason: leaseSignal.reason });
    abort(leaseSignal.reason);
  };
  const unwatchLease = onSignalAbort(leaseSignal, onLeaseLost);
  const timeout = clock.setTimeout(() => {
    if (controller.aborted) return;
    env.observe({ type: 'handler-timeout', taskId: task.id });
    abort(
      new TimeoutError(`handler of task ${task.id} did not finish within ${options.handlerTimeoutMs} ms`),
    );
  }, options.handlerTimeoutMs);

  try {
    env.observe({ type: 'task-started', task, fence, lockKey });
    const context: TaskContext = {
      task,
      fence,
      get signal() {
        return controller.signal;
      },
      workerId: options.id,
      lockKey,
      ...(run.permit ? { permit: { key: run.permit.key, fence: run.permit.fence } } : {}),
    };
    const settled = await settle(invoke(options.handler, context), controller, env);
    if (settled === 'abandoned') {
      env.observe({ type: 'handler-abandoned', task, fence, reason: controller.reason });
      return { kind: 'failed', error: controller.reason };
    }
    if (settled.kind === 'failed' && controller.aborted) {
      return { kind: 'failed', error: controller.reason };
    }
    return settled;
  } finally {
    clock.clearTimeout(timeout);
    unwatchLease();
  }
}

function invoke(handler: (context: TaskContext) => unknown, context: TaskContext): Promise<unknown> {
  try {
    return Promise.resolve(handler(context));
  } catch (error) {
    return Promise.reject(error);
  }
}

function settle(
  promise: Promise<unknown>,
  abort: LazyAbort,
  env: WorkerEnv,
): Promise<HandlerResult | 'abandoned'> {
  const { clock, abandonAfterMs } = env.options;
  return new Promise((resolve) => {
    let timer: unknown;
    const finish = (result: HandlerResult | 'abandoned') => {
      if (timer !== undefined) clock.clearTimeout(timer);
      unwatch();
      resolve(result);
    };
    const unwatch = abort.onAbort(() => {
      timer = clock.setTimeout(() => finish('abandoned'), abandonAfterMs);
    });
    promise.then(
      (value) => finish({ kind: 'resolved', value }),
      (error: unknown) => finish({ kind: 'failed', error }),
    );
  });
}
