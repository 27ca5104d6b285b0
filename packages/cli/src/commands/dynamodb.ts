import { createLockProvider, type EnvLike, type LockProviderConfig } from '@baton/core';
import type { Command } from 'commander';
import { durationArg } from '../args.js';
import { lockInput } from '../config.js';
import { type CommandContext, commandContext } from '../context.js';
import { cliDurationBounds } from '../durations.js';
import { printJson, printLines } from '../output.js';

/** `baton dynamodb …`: DynamoDB backend administration. */
export function dynamodbCommand(program: Command): Command {
  const dynamodb = program.command('dynamodb').description('administer the DynamoDB lock backend');
  dynamodb
    .command('create-table')
    .description('create the lock table (on-demand billing) unless it exists, and wait until it is ACTIVE')
    .option('--table <name>', 'table name (overrides BATON_DYNAMODB_TABLE; default baton_locks)')
    .option(
      '--timeout <duration>',
      'how long to wait for the table to become ACTIVE (up to 24h)',
      durationArg(cliDurationBounds.createTableTimeout),
      300_000,
    )
    .addHelpText(
      'after',
      '\nUses AWS_REGION, AWS_ENDPOINT_URL_DYNAMODB and the default AWS credential chain.\n' +
        'Needs dynamodb:DescribeTable and dynamodb:CreateTable.',
    )
    .action(async (opts: { table?: string; timeout: number }, command: Command) => {
      const ctx = await commandContext(command);
      const { DynamoLockProvider } = await import('@baton/backend-dynamodb');
      const provider = await createLockProvider(dynamoInput(ctx, opts.table));
      try {
        if (!(provider instanceof DynamoLockProvider)) {
          throw new Error(`expected the DynamoDB provider, got '${provider.backend}'`);
        }
        const result = await provider.ensureTable({ timeoutMs: opts.timeout });
        if (ctx.json) return printJson({ table: provider.table, result, status: 'ACTIVE' });
        printLines(
          result === 'created'
            ? `created table ${provider.table} (ACTIVE)`
            : `table ${provider.table} already exists (ACTIVE)`,
        );
      } finally {
        await provider.close();
      }
    });
  return dynamodb;
}

/** DynamoDB settings whatever BATON_BACKEND says: the config file's `lock` section if it is DynamoDB's. */
function dynamoInput(ctx: CommandContext, table: string | undefined): LockProviderConfig | EnvLike {
  const chosen = lockInput(ctx.globals, ctx.env, ctx.config, ctx.cwd);
  if ('backend' in chosen && chosen.backend === 'dynamodb' && !('BATON_BACKEND' in chosen)) {
    return { ...(chosen as LockProviderConfig), ...(table ? { table } : {}) };
  }
  return { ...ctx.env, BATON_BACKEND: 'dynamodb', ...(table ? { BATON_DYNAMODB_TABLE: table } : {}) };
}
