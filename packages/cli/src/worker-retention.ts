import type { Clock, LockProvider } from '@baton/core';
import type { PostgresTaskSource, RetentionPolicy } from '@baton/source-postgres';
import { UsageError } from './classify-errors.js';
import type { Logger } from './logger.js';
import type { WorkerMetrics } from './metrics.js';
import type { ResolvedSettings } from './settings.js';
import { logText } from './worker-log.js';
import type { workerSettings } from './worker-settings.js';

/**
 * The retention policy of `baton worker`, or `undefined` when it is off (no `--retain-done` /
 * `--retain-dead`). Its schedule or batch size given alone is a usage error: it would do nothing.
 */
export function retentionPolicy(
  settings: ResolvedSettings<typeof workerSettings>,
): RetentionPolicy | undefined {
  const { retainDone, retainDead, retentionEvery, retentionBatch } = settings.values;
  if (retainDone === undefined && retainDead === undefined) {
    const given = (['retentionEvery', 'retentionBatch'] as const).find(
      (key) => settings.source(key).from !== 'default',
    );
    if (given) {
      const field = settings.source(given).field;
      throw new UsageError(
        `worker: ${field} applies to retention only, which is off. Fix: add --retain-done <age> and/or --retain-dead <age> (or BATON_RETAIN_DONE / BATON_RETAIN_DEAD), or drop it.`,
        { field },
      );
    }
    return undefined;
  }
  return {
    ...(retainDone !== undefined ? { doneAfterMs: retainDone } : {}),
    ...(retainDead !== undefined ? { deadAfterMs: retainDead } : {}),
    everyMs: retentionEvery,
    batchSize: retentionBatch,
  };
}

/** A running retention campaign of this worker. */
export interface WorkerRetention {
  readonly key: string;
  /** Steps down (between two batches at the latest) and resolves once resigned. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Campaigns for the task table's retention election beside the worker; while elected, applies `policy`
 * on its schedule, logging and counting what each run removed. Never rejects: errors are logged.
 */
export async function startWorkerRetention(options: {
  policy: RetentionPolicy;
  source: PostgresTaskSource;
  locks: LockProvider;
  workerId: string;
  clock: Clock;
  log: Logger;
  metrics: WorkerMetrics;
}): Promise<WorkerRetention> {
  const { policy, source, locks, workerId, clock, log, metrics } = options;
  const { runRetention, retentionKey } = await import('@baton/source-postgres');
  const key = retentionKey(source);
  const counters = metrics.observeRetention(key);
  const controller = new AbortController();
  const running = runRetention(source, locks, policy, {
    signal: controller.signal,
    clock,
    value: { id: workerId },
    sessionOptions: { name: `${workerId}-retention` },
    onElected: (term) => {
      counters.elected();
      log.info({ key, term, policy }, 'retention: elected; this worker applies the retention policy');
    },
    onEnded: (term) => {
      counters.ended();
      log.info({ key, term }, 'retention: no longer applying the policy');
    },
    onRun: (run) => {
      counters.ran(run);
      log.info(
        {
          key,
          term: run.term,
          done: run.done,
          dead: run.dead,
          batches: run.batches,
          durationMs: run.durationMs,
        },
        `retention: deleted ${run.done} done and ${run.dead} dead task(s)`,
      );
    },
    onError: (error) => log.warn({ key, err: logText(error) }, 'retention: a run failed; campaigning again'),
  }).catch((error: unknown) => {
    counters.ended();
    log.error({ key, err: logText(error) }, 'retention stopped on an error; the worker keeps running');
  });
  let stopping: Promise<void> | undefined;
  return {
    key,
    stop() {
      controller.abort();
      stopping ??= running;
      return stopping;
    },
  };
}
