import { Election, type LeaderInfo } from '@baton/core';
import type { Command } from 'commander';
import { durationArg, intArg, keyArg } from '../args.js';
import { commandContext, openLocks } from '../context.js';
import { cliDurationBounds } from '../durations.js';
import { printJson, printLines } from '../output.js';
import { onStopSignal } from '../signals.js';

/** `baton leader …`: leader discovery on an election key. */
export function leaderCommand(program: Command): Command {
  const leader = program.command('leader').description('discover the leader of an election key');

  leader
    .command('show')
    .description('show the current leader')
    .argument('<key>', 'election key, e.g. service/reports/leader', keyArg)
    .action(async (key: string, _opts: unknown, command: Command) => {
      const ctx = await commandContext(command);
      const provider = await openLocks(ctx, { shared: true });
      try {
        const info = await new Election(provider, key).leader();
        if (ctx.json) return printJson(info);
        printLines(info ? describeLeader(key, info) : `${key}: no leader`);
      } finally {
        await provider.close();
      }
    });

  leader
    .command('watch')
    .description('print the leader now, then every change, until interrupted')
    .argument('<key>', 'election key', keyArg)
    .option('--count <n>', 'stop after this many updates', intArg(1))
    .option(
      '--poll <duration>',
      'polling interval for backends without a native watch (10ms to 24h; default 500ms)',
      durationArg(cliDurationBounds.leaderPoll),
      500,
    )
    .action(async (key: string, opts: { count?: number; poll: number }, command: Command) => {
      const ctx = await commandContext(command);
      const provider = await openLocks(ctx, { shared: true });
      const controller = new AbortController();
      const stopSignal = onStopSignal(() => controller.abort());
      try {
        let seen = 0;
        const updates = new Election(provider, key).observe({
          signal: controller.signal,
          pollIntervalMs: opts.poll,
        });
        for await (const info of updates) {
          const at = new Date().toISOString();
          if (ctx.json) process.stdout.write(`${JSON.stringify({ at, key, leader: info })}\n`);
          else printLines(`${at}  ${info ? describeLeader(key, info) : `${key}: no leader`}`);
          if (opts.count !== undefined && ++seen >= opts.count) break;
        }
      } finally {
        stopSignal.dispose();
        await provider.close();
      }
      stopSignal.exitIfSignalled();
    });

  return leader;
}

function describeLeader(key: string, info: LeaderInfo): string {
  const where = [info.host, info.address].filter(Boolean).join(' ');
  return `${key}: ${info.id} (term ${info.term}${where ? `, ${where}` : ''}${
    info.startedAt ? `, since ${info.startedAt}` : ''
  })`;
}
