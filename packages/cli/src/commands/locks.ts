import { canForceRelease, FORCED_RELEASE_RISKS, forceReleaseLock, type LockProvider } from '@baton/core';
import type { Command } from 'commander';
import { keyArg } from '../args.js';
import { UsageError } from '../classify-errors.js';
import { commandContext, openLocks } from '../context.js';
import { ageText, holderJson, humanMs, leaseText, waitersText } from '../holder-view.js';
import { note, printJson, printLines, table } from '../output.js';

/** The risks declared once in core, wrapped for a terminal. */
const CONSEQUENCES = [
  'What a forced release breaks:',
  ...FORCED_RELEASE_RISKS.map((risk) => `  - ${wrap(risk)}`),
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
        const now = Date.now();
        const views = holders.map((holder) => holderJson(holder, now));
        if (ctx.json) return printJson(views);
        if (views.length === 0) return printLines(`no locks held${prefix ? ` under '${prefix}'` : ''}`);
        printLines(
          table(
            views.map((view) => ({ ...view, age: ageText(view), leaseLeft: leaseText(view) })),
            ['key', 'sessionId', 'fence', 'age', 'leaseLeft', 'value'],
          ),
        );
      });
    });

  locks
    .command('show')
    .description('show who holds a lock, since when, the lease left, and who waits for it')
    .argument('<key>', 'lock key, e.g. task/42', keyArg)
    .action(async (key: string, _opts: unknown, command: Command) => {
      const ctx = await commandContext(command);
      await withProvider(ctx, async (provider) => {
        const [holder, waiters] = await Promise.all([
          provider.getHolder(key),
          provider.capabilities.waiters && provider.waiters ? provider.waiters(key) : undefined,
        ]);
        const view = holder ? holderJson(holder, Date.now()) : null;
        if (ctx.json) return printJson(view && { ...view, waiters: waiters ?? null });
        if (!view) return printLines(`${key}: free`);
        printLines(
          `${key}: held`,
          `  session  ${view.sessionId}`,
          `  fence    ${view.fence}`,
          `  taken    ${view.acquiredAt === null || view.ageMs === null ? '-' : `${view.acquiredAt} (${humanMs(view.ageMs)} ago, ${view.acquiredAtSource} clock)`}`,
          `  lease    ${leaseText(view)}${view.leaseRemainingMs === null && view.leaseRemainingAtMostMs === null ? '' : ' left if its holder stops renewing now'}`,
          `  waiting  ${waiters ? waitersText(waiters) : provider.capabilities.fairQueue ? 'not listed by this backend' : 'no line (waiters poll and race)'}`,
          `  value    ${view.value ?? '-'}`,
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
        if (!canForceRelease(provider)) {
          throw new UsageError(`the '${provider.backend}' backend does not support forced release`);
        }
        const { released, previousHolder: previous } = await forceReleaseLock(provider, key);
        if (ctx.json)
          return printJson({
            key,
            released,
            previousHolder: previous ? holderJson(previous, Date.now()) : null,
          });
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

/** A risk broken before 108 columns (with its `  - ` prefix), continuation lines indented by 4. */
function wrap(line: string): string {
  const out: string[] = [];
  let current = '';
  for (const word of line.split(' ')) {
    if (current.length > 0 && current.length + 1 + word.length > 104) {
      out.push(current);
      current = `    ${word}`;
    } else current = current.length === 0 ? word : `${current} ${word}`;
  }
  out.push(current);
  return out.join('\n');
}
