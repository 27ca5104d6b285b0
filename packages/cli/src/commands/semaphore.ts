import {
  type LockProvider,
  MAX_SEMAPHORE_LIMIT,
  type PermitHolder,
  semaphore,
  semaphoreLineKey,
  semaphoreQueues,
} from '@baton/core';
import type { Command } from 'commander';
import { intArg, keyArg } from '../args.js';
import { UsageError } from '../classify-errors.js';
import { commandContext, openLocks } from '../context.js';
import { printJson, printLines, table } from '../output.js';

/** What `baton semaphore show` reports: the permits held and what they say about the limit. */
interface SemaphoreView {
  name: string;
  /** The limit given with --limit, or the one every holder recorded; null when unknown or mixed. */
  limit: number | null;
  /** Limits the holders recorded, ascending: more than one is a misconfiguration. */
  limitsSeen: number[];
  held: number;
  free: number | null;
  permits: Array<Omit<PermitHolder, 'limit' | 'value'> & { limit: number | null; value: string | null }>;
  /**
   * Who waits for a permit. Where the backend keeps a fair line served on a watch (`queued`), blocking
   * acquisitions line up on `<name>/line`: `head` holds that key and watches the slots, `behind` counts those
   * queued after it (null when the backend cannot list its line). Elsewhere waiters poll or watch the slots
   * and race: there is no line (`queued: false`).
   */
  waiters: { queued: boolean; head: string | null; behind: number | null };
}

/** `baton semaphore …`: inspect a semaphore (or a worker's per-kind limit, `limit/<kind>`). */
export function semaphoreCommand(program: Command): Command {
  const group = program
    .command('semaphore')
    .description("inspect a semaphore's permits (a worker's --limit kind=n is the semaphore limit/<kind>)");

  group
    .command('show')
    .description(
      'show who holds the permits of a semaphore, their fences, and the limits they were taken with',
    )
    .argument('<name>', 'semaphore name, e.g. limit/call-partner-api', keyArg)
    .option(
      '--limit <n>',
      'the limit to check against (needed on backends that cannot list keys)',
      intArg(1, MAX_SEMAPHORE_LIMIT),
    )
    .action(async (name: string, opts: { limit?: number }, command: Command) => {
      const ctx = await commandContext(command);
      const provider = await openLocks(ctx, { shared: true });
      try {
        const view = await inspect(provider, name, opts.limit);
        if (ctx.json) return printJson(view);
        printLines(...describe(view));
      } finally {
        await provider.close();
      }
    });
  return group;
}

async function inspect(
  provider: LockProvider,
  name: string,
  limit: number | undefined,
): Promise<SemaphoreView> {
  const canList = provider.capabilities.list && provider.list !== undefined;
  if (limit === undefined && !canList) {
    throw new UsageError(
      `semaphore show: the '${provider.backend}' backend cannot list keys, so the slots to read are unknown. ` +
        'Fix: add --limit <n> (the limit the semaphore is used with).',
      { field: '--limit' },
    );
  }
  // Listing backends show every held slot whatever the limit given here.
  const holders = await semaphore(provider, name, { limit: limit ?? 1 }).holders();
  const limitsSeen = [
    ...new Set(holders.map((h) => h.limit).filter((l): l is number => l !== undefined)),
  ].sort((a, b) => a - b);
  const known = limit ?? (limitsSeen.length === 1 ? limitsSeen[0]! : null);
  return {
    name,
    limit: known,
    limitsSeen,
    held: holders.length,
    free: known === null ? null : Math.max(0, known - holders.filter((h) => h.slot < known).length),
    permits: holders.map((h) => ({ ...h, limit: h.limit ?? null, value: h.value ?? null })),
    waiters: await waitersOf(provider, name),
  };
}

async function waitersOf(provider: LockProvider, name: string): Promise<SemaphoreView['waiters']> {
  if (!semaphoreQueues(provider)) return { queued: false, head: null, behind: null };
  const line = semaphoreLineKey(name);
  const head = await provider.getHolder(line, { times: false });
  if (!head) return { queued: true, head: null, behind: 0 };
  const listed = provider.capabilities.waiters && provider.waiters ? await provider.waiters(line) : undefined;
  return { queued: true, head: head.sessionId, behind: listed ? listed.length : null };
}

function describe(view: SemaphoreView): string[] {
  const lines = [
    `${view.name}: ${view.held} permit(s) held${view.limit === null ? '' : ` of ${view.limit}, ${view.free} free`}`,
  ];
  if (view.limitsSeen.length > 1 || (view.limit !== null && view.limitsSeen.some((l) => l !== view.limit))) {
    lines.push(
      `  warning: holders took their permits with limits ${view.limitsSeen.join(', ')}` +
        `${view.limit === null ? '' : ` (checked against ${view.limit})`}: every process must use one limit per name`,
    );
  }
  if (view.permits.length > 0) {
    lines.push(
      table(
        view.permits.map((p) => ({
          slot: p.slot,
          sessionId: p.sessionId,
          fence: p.fence,
          limit: p.limit ?? '-',
          value: p.value ?? '-',
        })),
        ['slot', 'sessionId', 'fence', 'limit', 'value'],
      ),
    );
  }
  lines.push(`  waiters: ${waitersLine(view.waiters)}`);
  return lines;
}

function waitersLine(waiters: SemaphoreView['waiters']): string {
  if (!waiters.queued) return 'no line on this backend (waiters watch or poll the slots and race)';
  if (waiters.head === null) return 'none';
  const behind =
    waiters.behind === null ? 'the backend cannot list the rest of the line' : `${waiters.behind} behind it`;
  return `session ${waiters.head} is first in line (${behind})`;
}
