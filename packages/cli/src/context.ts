import { createLockProvider, type EnvLike, type LockProvider } from '@baton/core';
import type { Command } from 'commander';
import { UsageError } from './classify-errors.js';
import { backendName, type GlobalOptions, type LoadedConfig, loadConfigFile, lockInput } from './config.js';
import { warn } from './output.js';

/** What every command action starts from: merged options, the environment and the config file. */
export interface CommandContext {
  readonly globals: GlobalOptions;
  readonly env: EnvLike;
  readonly cwd: string;
  readonly config: LoadedConfig;
  readonly json: boolean;
}

/** Builds the context of a command action (reads and validates the config file). */
export async function commandContext(command: Command): Promise<CommandContext> {
  const globals = command.optsWithGlobals<GlobalOptions>();
  const cwd = process.cwd();
  const env = process.env;
  const config = await loadConfigFile(globals.config, env, cwd);
  return { globals, env, cwd, config, json: globals.json === true };
}

/**
 * Creates the configured lock provider. `shared` commands (inspecting or changing other processes' locks)
 * refuse the memory backend, whose locks live inside one process.
 */
export async function openLocks(
  ctx: CommandContext,
  options: { shared?: boolean } = {},
): Promise<LockProvider> {
  const input = lockInput(ctx.globals, ctx.env, ctx.config, ctx.cwd);
  if (options.shared && backendName(input) === 'memory') {
    throw new UsageError(
      'the memory backend keeps its locks inside one process, so this command would only ever see its own ' +
        'empty store. Fix: choose a shared backend with --backend or BATON_BACKEND (consul, dynamodb, etcd, postgres, ...).',
      { field: 'BATON_BACKEND' },
    );
  }
  return createLockProvider(input, { onWarning: (warning) => warn(warning, ctx.json) });
}
