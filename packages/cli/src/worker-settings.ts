import { DEFAULT_HEARTBEAT_EVERY_MS, durationMs, MAX_SEMAPHORE_LIMIT } from '@baton/core';
import { z } from 'zod';
import { durationArg, durationOrOffArg, intArg, powerOfTwoArg } from './args.js';
import { cliDurationBounds } from './durations.js';
import { setting } from './settings.js';

const wholeNumber = () => z.number().int('expected a whole number');

/**
 * Every setting of `baton worker` (the config file's `worker` section), each declared once: its schema, its
 * default, its flag and its environment variable. {@link resolveSettings} decides which source wins.
 */
export const workerSettings = {
  handler: setting(z.string().min(1).optional(), { flag: '--handler' }),
  id: setting(z.string().min(1).optional(), { flag: '--id' }),
  concurrency: setting(wholeNumber().min(1).max(1_000).default(4), { flag: '--concurrency' }),
  every: setting(durationMs(cliDurationBounds.every).default(1_000), { flag: '--every', group: 'schedule' }),
  cron: setting(z.string().min(1).optional(), { flag: '--cron', group: 'schedule' }),
  once: setting(z.boolean().optional(), { flag: '--once', group: 'schedule' }),
  tz: setting(z.string().min(1).optional(), { flag: '--tz', file: false }),
  kinds: setting(z.array(z.string().min(1)).min(1).optional(), { flag: '--kinds' }),
  handlerTimeout: setting(durationMs(cliDurationBounds.handlerTimeout).default(300_000), {
    flag: '--handler-timeout',
  }),
  stopGrace: setting(durationMs(cliDurationBounds.stopGrace).default(30_000), { flag: '--stop-grace' }),
  /**
   * How often the worker publishes its heartbeat (the `workers` table, read by the console); `off` (or
   * `false` in the file) turns it off. The default is the library's.
   */
  heartbeatEvery: setting(
    z
      .union([
        z.literal(false),
        z.literal('off').transform(() => false as const),
        durationMs(cliDurationBounds.heartbeatEvery),
      ])
      .default(DEFAULT_HEARTBEAT_EVERY_MS),
    {
      flag: '--heartbeat-every',
      env: { name: 'BATON_HEARTBEAT_EVERY', parse: durationOrOffArg(cliDurationBounds.heartbeatEvery) },
    },
  ),
  statsEvery: setting(durationMs(cliDurationBounds.statsEvery).optional(), { flag: '--stats-every' }),
  leaderKey: setting(z.string().min(1).optional(), { flag: '--leader-key' }),
  leaseBy: setting(z.enum(['task', 'bucket']).default('task'), {
    flag: '--lease-by',
    env: {
      name: 'BATON_LEASE_BY',
      parse: (text) => {
        if (text !== 'task' && text !== 'bucket') {
          throw new Error(`'${text}' is not a lease mode. Fix: task or bucket.`);
        }
        return text;
      },
    },
  }),
  buckets: setting(
    wholeNumber()
      .min(1)
      .max(1_024)
      .refine((n) => (n & (n - 1)) === 0, 'expected a power of two such as 64')
      .default(64),
    { flag: '--buckets', env: { name: 'BATON_BUCKETS', parse: powerOfTwoArg(1_024) } },
  ),
  prefetch: setting(wholeNumber().min(0).max(10_000).optional(), { flag: '--prefetch' }),
  maxBuckets: setting(wholeNumber().min(1).max(1_024).optional(), { flag: '--max-buckets' }),
  /** Cluster-wide concurrency limit per task kind (task mode): `{ "send-email": 3 }`. */
  limits: setting(z.record(z.string().min(1), wholeNumber().min(1).max(MAX_SEMAPHORE_LIMIT)).optional(), {
    flag: '--limit',
  }),
  /** Retention (off unless an age is given): the elected worker deletes done tasks finished this long ago. */
  retainDone: setting(durationMs(cliDurationBounds.retainAfter).optional(), {
    flag: '--retain-done',
    env: { name: 'BATON_RETAIN_DONE', parse: durationArg(cliDurationBounds.retainAfter) },
  }),
  /** Retention: dead tasks finished this long ago. */
  retainDead: setting(durationMs(cliDurationBounds.retainAfter).optional(), {
    flag: '--retain-dead',
    env: { name: 'BATON_RETAIN_DEAD', parse: durationArg(cliDurationBounds.retainAfter) },
  }),
  /** Retention: how often the elected worker applies it. */
  retentionEvery: setting(durationMs(cliDurationBounds.retentionEvery).default(3_600_000), {
    flag: '--retention-every',
    env: { name: 'BATON_RETENTION_EVERY', parse: durationArg(cliDurationBounds.retentionEvery) },
  }),
  /** Retention: rows read per prune statement. */
  retentionBatch: setting(wholeNumber().min(1).max(10_000).default(1_000), {
    flag: '--retention-batch',
    env: { name: 'BATON_RETENTION_BATCH', parse: intArg(1, 10_000) },
  }),
};

/** The config file's `metrics` section: the worker's Prometheus endpoint. */
export const metricsSettings = {
  port: setting(z.number().int().min(0).max(65_535).optional(), { flag: '--metrics-port' }),
  host: setting(z.string().min(1).default('0.0.0.0'), { flag: '--metrics-host' }),
};
