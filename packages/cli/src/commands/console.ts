import { consoleDurationBounds, consoleOptionsSchema, MIN_TOKEN_LENGTH } from '@baton/console';
import { describeDurationBounds, formatDurationBound, type LockProvider } from '@baton/core';
import type { Command } from 'commander';
import type { z } from 'zod';
import { durationArg } from '../args.js';
import { UsageError } from '../classify-errors.js';
import { backendName, lockInput, logLevel } from '../config.js';
import { commandContext, openLocks } from '../context.js';
import { postgresEnv } from '../database.js';
import { createLogger } from '../logger.js';
import { note } from '../output.js';
import { addRetainOptions, type RetainFlags, resolveRetainAges } from '../retain-options.js';
import { onStopSignal } from '../signals.js';

/** Defaults and bounds come from the console's own schema: declared once, shown in the help. */
const DEFAULTS = consoleOptionsSchema.parse({});
const TOKEN_ENV = 'BATON_CONSOLE_TOKEN';

interface ConsoleFlags extends RetainFlags {
  port?: string;
  host?: string;
  refresh?: number;
  election?: string[];
  lockPrefix?: string;
  tokenEnv: string;
}

/** `baton console`: the web console (tasks, dead tasks and retries, locks, leaders), updated live. */
export function consoleCommand(program: Command): Command {
  return addRetainOptions(
    program
      .command('console')
      .description(
        'serve the web console: tasks, throughput, dead tasks and retries, locks and leaders, live',
      )
      .option('--port <n>', `TCP port (default ${DEFAULTS.port}; 0 picks a free one)`)
      .option('--host <host>', `interface to listen on (default ${DEFAULTS.host}: this machine only)`)
      .option(
        '--refresh <duration>',
        `how often the one shared refresh reads the database, ${describeDurationBounds(consoleDurationBounds.refreshMs)} (default ${formatDurationBound(DEFAULTS.refreshMs)})`,
        durationArg(consoleDurationBounds.refreshMs),
      )
      .option('--election <key>', 'election key whose leader to show (repeatable)', collect, [])
      .option('--lock-prefix <prefix>', 'only list locks under this key prefix')
      .option(
        '--token-env <name>',
        `environment variable holding the token that allows actions (at least ${MIN_TOKEN_LENGTH} characters); without it the console is read-only`,
        TOKEN_ENV,
      ),
  )
    .addHelpText(
      'after',
      "\nWith --retain-done/--retain-dead (or BATON_RETAIN_DONE/BATON_RETAIN_DEAD, or the config file's worker section),\n" +
        "the page shows how many finished tasks the workers' retention policy removes next.",
    )
    .action(async (flags: ConsoleFlags, command: Command) => {
      const parsed = consoleOptionsSchema.safeParse({
        port: flags.port,
        host: flags.host,
        refreshMs: flags.refresh,
        elections: flags.election,
        lockPrefix: flags.lockPrefix,
      });
      if (!parsed.success) throw usageOf(parsed.error);
      const ctx = await commandContext(command);
      const retention = resolveRetainAges(flags, ctx.env, ctx.config.file);
      const token = ctx.env[flags.tokenEnv] || undefined;
      if (token !== undefined && token.length < MIN_TOKEN_LENGTH) {
        throw new UsageError(
          `console: ${flags.tokenEnv} must be at least ${MIN_TOKEN_LENGTH} characters. Fix: ${flags.tokenEnv}=$(openssl rand -hex 24)`,
          { field: flags.tokenEnv },
        );
      }
      const { openConsoleDatabase, startConsole } = await import('@baton/console');
      const database = await openConsoleDatabase(postgresEnv(ctx));
      let locks: LockProvider | undefined;
      try {
        if (backendName(lockInput(ctx.globals, ctx.env, ctx.config, ctx.cwd)) === 'memory') {
          note(
            'console: the memory lock backend lives inside each worker process; locks and leaders are not shown',
          );
        } else {
          locks = await openLocks(ctx, { shared: true });
        }
        const log = createLogger(logLevel(ctx.globals, ctx.env, ctx.config), {
          fd: 2,
          name: 'baton-console',
        });
        const running = await startConsole({
          ...parsed.data,
          source: database.source,
          db: database.pool,
          locks,
          token,
          retention,
          onAction: (entry) =>
            log.info({ console: entry }, `console action ${entry.action}: ${entry.outcome}`),
        });
        // One JSON line, as the worker's events: a supervisor reads the URL from it.
        if (ctx.json)
          process.stdout.write(`${JSON.stringify({ url: running.url, readOnly: running.readOnly })}\n`);
        else {
          process.stdout.write(`baton console on ${running.url}\n`);
          note(
            running.readOnly
              ? `read-only (set ${flags.tokenEnv} to allow retries)`
              : 'actions allowed with the token',
          );
        }
        let stop: () => void = () => {};
        const stopped = new Promise<void>((resolve) => {
          stop = resolve;
        });
        const signal = onStopSignal(() => stop());
        try {
          await stopped;
        } finally {
          signal.dispose();
          await running.close();
        }
        signal.exitIfSignalled();
      } finally {
        await locks?.close();
        await database.close();
      }
    });
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

const FLAG_OF: Record<string, string> = {
  port: '--port',
  host: '--host',
  refreshMs: '--refresh',
  elections: '--election',
  lockPrefix: '--lock-prefix',
};

function usageOf(error: z.ZodError): UsageError {
  const issue = error.issues[0]!;
  const flag = FLAG_OF[String(issue.path[0])] ?? String(issue.path[0]);
  return new UsageError(`console: ${flag}: ${issue.message}`, { field: flag });
}
