import { type Command, Option } from 'commander';
import { durationArg, intArg } from '../args.js';
import { commandContext } from '../context.js';
import type { DemoFlags } from '../demo/run.js';
import { cliDurationBounds } from '../durations.js';
import { UsageError } from '../exit-codes.js';

/** `baton demo`: the embedded demo behind `npm start`. */
export function demoCommand(program: Command): Command {
  return program
    .command('demo')
    .description(
      'run N workers over a batch of tasks with nothing installed, then prove each ran exactly once',
    )
    .option('--tasks <n>', 'tasks to enqueue', intArg(1, 100_000), 500)
    .option('--workers <n>', 'workers to run', intArg(1, 32), 4)
    .option('--concurrency <n>', 'handlers per worker', intArg(1, 256), 8)
    .option(
      '--sleep <duration>',
      'average handler time (0 to 10s; plain numbers are ms)',
      durationArg(cliDurationBounds.demoSleep),
      5,
    )
    .option(
      '--timeout <duration>',
      'give up after this long (1s to 24h)',
      durationArg(cliDurationBounds.demoTimeout),
      120_000,
    )
    .option(
      '--in-process',
      'run consul/dynamodb/etcd/postgres/redis workers in this process instead of child processes',
    )
    .addOption(
      new Option(
        '--lease-by <mode>',
        'task: a lock per task (default); bucket: leases on buckets of tasks',
      ).choices(['task', 'bucket']),
    )
    .addHelpText(
      'after',
      `
--backend picks the embedded lock backend: memory (default; workers in this process), consul (the
Consul-compatible test server), dynamodb (dynalite), etcd (a real etcd started on free ports: needs
Debian's etcd-server), postgres (locks in a schema of the demo's own database) or redis (a real
redis-server started on a free port: needs Debian's redis-server); for all but memory each worker is a
separate \`baton worker\` process connected to
the servers this command starts. PostgreSQL is PGlite, in process.
Nothing outside this process is touched: DATABASE_URL, BATON_BACKEND and the backend variables are ignored.

Exits 0 when every check passes, 1 when one fails.`,
    )
    .action(async (flags: DemoFlags, command: Command) => {
      const ctx = await commandContext(command);
      const backend = ctx.globals.backend ?? 'memory';
      if (
        backend !== 'memory' &&
        backend !== 'consul' &&
        backend !== 'dynamodb' &&
        backend !== 'etcd' &&
        backend !== 'postgres' &&
        backend !== 'redis'
      ) {
        throw new UsageError(
          `demo: --backend ${backend} cannot be embedded. Fix: --backend memory, consul, dynamodb, etcd, postgres or redis.`,
          { field: '--backend' },
        );
      }
      const { runDemo } = await import('../demo/run.js');
      await runDemo(backend, flags, ctx.json);
    });
}
