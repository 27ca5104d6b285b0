import type { EnvLike } from '@baton/core';
import type { Command } from 'commander';
import { durationArg } from './args.js';
import type { ConfigFile } from './config.js';
import { cliDurationBounds } from './durations.js';
import { resolveSettings } from './settings.js';
import { workerSettings } from './worker-settings.js';

/** Retention ages as commander parses them (`--retain-done`, `--retain-dead`). */
export interface RetainFlags {
  retainDone?: number;
  retainDead?: number;
}

/**
 * Adds `--retain-done` and `--retain-dead`: declared once, for `baton worker` (which applies the policy)
 * and `baton console` (which shows what it removes next).
 */
export function addRetainOptions(command: Command): Command {
  return command
    .option(
      '--retain-done <duration>',
      'retention (off by default): the one elected worker deletes done tasks finished this long ago, e.g. 168h ' +
        '(env BATON_RETAIN_DONE)',
      durationArg(cliDurationBounds.retainAfter),
    )
    .option(
      '--retain-dead <duration>',
      'retention: also dead tasks finished this long ago, e.g. 720h (env BATON_RETAIN_DEAD)',
      durationArg(cliDurationBounds.retainAfter),
    );
}

/** The worker's retention ages, from the same flags, variables and config file keys (`worker.retainDone`). */
const retainSettings = { retainDone: workerSettings.retainDone, retainDead: workerSettings.retainDead };

/** The retention ages in force: flag > `BATON_RETAIN_DONE`/`BATON_RETAIN_DEAD` > config file `worker` section. */
export function resolveRetainAges(
  flags: RetainFlags,
  env: EnvLike,
  file: ConfigFile,
): { doneAfterMs: number | undefined; deadAfterMs: number | undefined } {
  const { values } = resolveSettings('worker', retainSettings, {
    flags: { retainDone: flags.retainDone, retainDead: flags.retainDead },
    env,
    file: file.worker,
  });
  return { doneAfterMs: values.retainDone, deadAfterMs: values.retainDead };
}
