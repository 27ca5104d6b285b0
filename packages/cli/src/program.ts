import { Command, CommanderError, Option } from 'commander';
import { ExitCode, ReportedFailure } from './classify-errors.js';
import { consoleCommand } from './commands/console.js';
import { demoCommand } from './commands/demo.js';
import { dynamodbCommand } from './commands/dynamodb.js';
import { leaderCommand } from './commands/leader.js';
import { locksCommand } from './commands/locks.js';
import { semaphoreCommand } from './commands/semaphore.js';
import { migrateCommand, tasksCommand } from './commands/tasks.js';
import { workerCommand } from './commands/worker.js';
import { LOG_LEVELS } from './log-levels.js';
import { reportError } from './output.js';
import { usageErrorOf } from './usage-errors.js';
import { VERSION } from './version.js';

const EXIT_CODES_HELP = `
Exit codes:
  0    success
  1    runtime failure (a check, task or operation failed after startup)
  2    usage or configuration error (nothing was done)
  3    a backend or the database could not be reached
  4    permission denied by a backend or the database
  130  stopped by SIGINT, 143 stopped by SIGTERM (after a graceful stop)

Configuration: flags override environment variables, which override the config file.
The lock backend comes from BATON_BACKEND (memory, consul, dynamodb, etcd, postgres, or a custom one with
BATON_BACKEND_MODULE) and that backend's variables (CONSUL_HTTP_ADDR, AWS_REGION, ...);
the database from --database-url, DATABASE_URL or the PG* variables.
Docs: docs/cli.md, docs/configuration.md`;

/**
 * Builds the `baton` command tree. With `json`, commander's own error text (unknown flag, bad value,
 * unknown command, help shown for a missing command) is not written: {@link main} reports it as one JSON
 * error object instead.
 */
export function createProgram(options: { json?: boolean } = {}): Command {
  const program = new Command('baton')
    .description(
      'Mutually exclusive workers: many job servers share one task list, each task runs exactly once.',
    )
    .version(VERSION, '-V, --version')
    .option('-c, --config <file>', 'config file (JSON); also BATON_CONFIG')
    .option('--json', 'machine-readable output (JSON on stdout; errors as JSON on stderr)')
    .option(
      '--backend <name>',
      'lock backend (overrides BATON_BACKEND): memory, consul, dynamodb, etcd, postgres, or a custom name',
    )
    .option('--database-url <url>', 'PostgreSQL connection string (overrides DATABASE_URL)')
    .option('--schema <name>', "schema of baton's tables (overrides BATON_PG_SCHEMA)")
    .addOption(new Option('--log-level <level>', 'log level (overrides BATON_LOG_LEVEL)').choices(LOG_LEVELS))
    .showHelpAfterError('(run with --help for usage)')
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .addHelpText('after', EXIT_CODES_HELP);
  workerCommand(program);
  tasksCommand(program);
  migrateCommand(program);
  locksCommand(program);
  leaderCommand(program);
  semaphoreCommand(program);
  dynamodbCommand(program);
  demoCommand(program);
  consoleCommand(program);
  applyToTree(program, (command) => {
    command.exitOverride();
    command.configureHelp({ showGlobalOptions: true });
    if (options.json) command.configureOutput({ writeErr: () => {} });
  });
  return program;
}

function applyToTree(command: Command, fn: (command: Command) => void): void {
  fn(command);
  for (const sub of command.commands) applyToTree(sub, fn);
}

/**
 * Runs the CLI with `argv` (as `process.argv`) and resolves with the exit code. Never calls `process.exit`
 * itself except on a second stop signal.
 */
export async function main(argv: readonly string[] = process.argv): Promise<number> {
  const json = argv.includes('--json');
  const program = createProgram({ json });
  try {
    await program.parseAsync([...argv]);
    return ExitCode.OK;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version end with exit code 0; every other commander error is a usage error, which
      // commander has already printed as text, or which --json reports here as one JSON object.
      if (error.exitCode === 0) return ExitCode.OK;
      return json ? reportError(usageErrorOf(error), true) : ExitCode.USAGE;
    }
    if (error instanceof ReportedFailure) return error.exitCode;
    return reportError(error, json);
  }
}
