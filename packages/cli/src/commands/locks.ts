import type { LockHolder, LockProvider } from '@baton/core';
import type { Command } from 'commander';
import { keyArg } from '../args.js';
import { UsageError } from '../classify-errors.js';
import { commandContext, openLocks } from '../context.js';
import { note, printJson, printLines, table } from '../output.js';

const CONSEQUENCES = [
  'What a forced release breaks:',
  '  - The holder is not told. It keeps believing it holds the lock until its next renewal or monitor',
  '    check, and may keep working until then.',
  "  - Its fenced writes stay valid until someone else acquires the key: the next holder's fence is higher,",
  '    and only systems that check fences reject the old holder from then on.',
  '  - Writes to systems that do not check the fence are not protected at all.',
];

/** `baton locks …`: inspect and (as a last resort) force-release locks. */
export function locksCommand(program: Command): Command {
  const locks = program
    .command('locks')
    .description('inspect locks in the configured backend, and force-release one as a last resort');

  locks
    .command('list')
    .description('list held locks (optionally under a key prefix)')
    .argument('[prefix]', 'key prefix, e.g. task/', keyOrEmpty, '')
    .action(async (prefix: string, _opts: unknown, command: Command) => {
      const ctx = await commandContext(command);
      await withProvider(ctx, async (provider) => {
        if (!provider.capabilities.list || !provider.list) {
          throw new UsageError(
            `the '${provider.backend}' backend cannot list locks; use \`baton locks show <key>\``,
          );
        }
        const holders = await provider.list(prefix);
        if (ctx.json) return printJson(holders.map(holderJson));
        if (holders.length === 0) return printLines(`no locks held${prefix ? ` under '${prefix}'` : ''}`);
        printLines(table(holders.map(holderJson), ['key', 'sessionId', 'fence', 'value']));
      });
    });

  locks
    .command('show')
    .description('show who holds a lock')
    .argument('<key>', 'lock key, e.g. task/42', keyArg)
    .action(async (key: string, _opts: unknown, command: Command) => {
      const ctx = await commandContext(command);
      await withProvider(ctx, async (provider) => {
        const holder = await provider.getHolder(key);
        if (ctx.json) return printJson(holder ? holderJson(holder) : null);
        if (!holder) return printLines(`${key}: free`);
        printLines(
          `${key}: held`,
          `  session  ${holder.sessionId}`,
          `  fence    ${holder.fence}`,
          `  value    ${holder.value ?? '-'}`,
        );
      });
    });

  locks
    .command('release')
    .description("clear a lock's holder regardless of owner (operator escape hatch)")
    .argument('<key>', 'lock key, e.g. task/42', keyArg)
    .option('--force', 'required: releasing a lock you do not hold is always forced')
    .option('--yes-i-understand', 'confirm that you read what a forced release breaks')
    .addHelpText('after', `\n${CONSEQUENCES.join('\n')}`)
    .action(async (key: string, opts: { force?: boolean; yesIUnderstand?: boolean }, command: Command) => {
      if (!opts.force) {
        throw new UsageError(
          `locks release: a lock belongs to its holder's session; releasing it from outside needs --force. ` +
            `Fix: baton locks release --force --yes-i-understand ${key}`,
          { field: '--force' },
        );
      }
      if (!opts.yesIUnderstand) {
        note(CONSEQUENCES.join('\n'));
        throw new UsageError(
          `locks release --force: nothing was released. Fix: add --yes-i-understand once you accept the above.`,
          { field: '--yes-i-understand' },
        );
      }
      const ctx = await commandContext(command);
      await withProvider(ctx, async (provider) => {
        if (!provider.capabilities.forceRelease || !provider.forceRelease) {
          throw new UsageError(`the '${provider.backend}' backend does not support forced release`);
        }
        const previous = await provider.getHolder(key);
        const released = await provider.forceRelease(key);
        if (ctx.json)
          return printJson({ key, released, previousHolder: previous ? holderJson(previous) : null });
        if (!released) return printLines(`${key}: nobody held it; nothing was released`);
        note(CONSEQUENCES.join('\n'));
        printLines(
          `${key}: released${previous ? ` (was held by session ${previous.sessionId}, fence ${previous.fence})` : ''}`,
        );
      });
    });

  return locks;
}

function keyOrEmpty(value: string): string {
  return value === '' ? value : keyArg(value);
}

function holderJson(holder: LockHolder) {
  return { key: holder.key, sessionId: holder.sessionId, fence: holder.fence, value: holder.value ?? null };
}

async function withProvider(
  ctx: Awaited<ReturnType<typeof commandContext>>,
  fn: (provider: LockProvider) => Promise<void>,
): Promise<void> {
  const provider = await openLocks(ctx, { shared: true });
  try {
    await fn(provider);
  } finally {
    await provider.close();
  }
}
