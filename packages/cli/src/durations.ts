import { type DurationBounds, durationBounds, MAX_DURATION_MS, workerDurationBounds } from '@baton/core';
import { retentionDurationBounds } from '@baton/source-postgres';

/**
 * Bounds of every duration the CLI itself takes (flags, and the config file's `worker` section), in one place
 * so a flag and its config key can never disagree. The backends' and the database's settings have theirs in
 * their own packages.
 */
export const cliDurationBounds = {
  /** `--every` / `worker.every`: a floor of 100 ms, since each pass queries the database. */
  every: durationBounds({ min: 100, max: MAX_DURATION_MS }),
  /** `--handler-timeout` / `worker.handlerTimeout`: as the library's `handlerTimeoutMs`. */
  handlerTimeout: workerDurationBounds.handlerTimeoutMs,
  /** `--stop-grace` / `worker.stopGrace`: as the library's `stopGraceMs`. */
  stopGrace: workerDurationBounds.stopGraceMs,
  /** `--heartbeat-every` / `worker.heartbeatEvery`: as the library's `heartbeatEveryMs`. */
  heartbeatEvery: workerDurationBounds.heartbeatEveryMs,
  /** `--stats-every` / `worker.statsEvery`. */
  statsEvery: durationBounds({ min: 100 }),
  /** `--retain-done` / `--retain-dead` (`worker.retainDone` / `worker.retainDead`): as `tasks prune --older-than`. */
  retainAfter: retentionDurationBounds.afterMs,
  /** `--retention-every` / `worker.retentionEvery`. */
  retentionEvery: retentionDurationBounds.everyMs,
  /** `baton dynamodb create-table --timeout`. */
  createTableTimeout: durationBounds({ min: 1 }),
  /** `baton demo --timeout`. */
  demoTimeout: durationBounds({ min: 1_000 }),
  /** `baton demo --sleep`: the average handler time. */
  demoSleep: durationBounds({ min: 0, max: 10_000 }),
  /** `baton leader watch --poll`. */
  leaderPoll: durationBounds({ min: 10 }),
} as const satisfies Record<string, DurationBounds>;
