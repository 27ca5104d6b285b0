import { type Command, Option } from 'commander';
import { durationArg, intArg } from '../args.js';
import { ExitCode, ReportedFailure, UsageError } from '../classify-errors.js';
import { commandContext } from '../context.js';
import { cliDurationBounds } from '../durations.js';
import { onStopSignal } from '../signals.js';

/** The flags `baton demo` passes to `@baton/demo`'s `runDemo`. */
interface DemoFlags {
  tasks: number;
  workers: number;
  concurrency: number;
  sleep: number;
  timeout: number;
  inProcess?: boolean;
  leaseBy?: 'task' | 'bucket';
  /** Serve the web console next to the workers (on this port, or the default one). */
  console?: boolean | number;
}

/**
 * The part of `@baton/demo` this command uses. The package is loaded at run time, not declared as a
 * dependency: it depends on this one (its child workers are `baton worker` processes), and it brings the
 * embedded servers that a production installation does not need.
 */
interface DemoModule {
  runDemo(
    backend: string,
    flags: DemoFlags,
    options: { json: boolean; signal?: AbortSignal },
  ): Promise<{ ok: boolean; finished: boolean }>;
}

const DEMO_PACKAGE = '@baton/demo';

async function loadDemo(): Promise<DemoModule> {
  try {
    return (await import(DEMO_PACKAGE)) as DemoModule;
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    const missing =
      code === 'ERR_MODULE_NOT_FOUND' && String((error as Error).message).includes(`'${DEMO_PACKAGE}'`);
    if (!missing) throw error;
    throw new UsageError(
      `demo: the demo lives in the ${DEMO_PACKAGE} package, which is not installed. Fix: npm install ${DEMO_PACKAGE} (it brings the embedded servers: PGlite, dynalite, a Consul-compatible server).`,
      { field: 'demo', cause: error },
    );
  }
}

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
    .option(
      '--console [port]',
      'also serve the web console (baton console) next to the workers and print its URL; stays open after the run until Ctrl-C',
      intArg(0, 65_535),
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
      const { runDemo } = await loadDemo();
      const stop = new AbortController();
      const signals = onStopSignal(() => stop.abort());
      try {
        const outcome = await runDemo(backend, flags, { json: ctx.json, signal: stop.signal });
        signals.exitIfSignalled();
        if (!outcome.ok) throw new ReportedFailure('demo checks failed', ExitCode.FAILURE);
      } finally {
        signals.dispose();
      }
    });
}
