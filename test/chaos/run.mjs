#!/usr/bin/env node
// npm run chaos -- --backend <consul|dynamodb|etcd|redis|postgres> --minutes N [--lease-by task|bucket] [--buckets N] [--seed S]
//                  [--workers K] [--tasks T] [--out DIR]
//
// Runs `baton worker` processes through a seeded schedule of faults, checks the invariants, prints the
// report and exits 1 when any invariant was violated (2 on bad arguments).

import { parseArgs } from 'node:util';
import { DEFAULT_LIMIT, runChaos } from './harness.mjs';

const usage = `usage: npm run chaos -- --backend <consul|dynamodb|etcd|redis|postgres> [--minutes N] [--lease-by task|bucket]
                      [--buckets N] [--prefetch N] [--redis-persistence none|aof] [--seed S] [--workers K] [--tasks T] [--concurrency C] [--ttl MS]
                      [--drain-seconds S] [--limit kind=n|none] [--limit-share F] [--out DIR]

  --minutes N       length of the fault phase (default 1; fractions allowed)
  --lease-by M      the workers' lease mode: task (a lock per task, default) or bucket
  --buckets N       bucket mode: number of buckets, a power of two up to 1024 (default 16)
  --prefetch N      bucket mode: tasks claimed ahead of free handler slots (default: the worker's)
  --seed S          replay the fault schedule and task batch of an earlier run (printed by every run)
  --workers K       baton worker processes (default 4)
  --tasks T         tasks in the batch (default 4 per second of faults)
  --concurrency C   handlers per worker (default 4)
  --ttl MS          lease TTL in ms (default 2000)
  --drain-seconds S time the workers get to finish after the faults end (default 60)
  --limit kind=n    a share of the tasks gets this kind, limited to n per fleet (default ${DEFAULT_LIMIT.kind}=${DEFAULT_LIMIT.n});
                    none: no limit
  --limit-share F   that share, from 0 to 1 (default ${DEFAULT_LIMIT.share})
  --redis-persistence M  redis: none (default; a restart of the server comes back empty) or aof
  --out DIR         where logs and the report go (default: a new directory under the OS tmpdir)

etcd and redis: a real etcd / redis-server on free ports (Debian's etcd-server, redis-server), killed (-9) and
restarted mid-run by the restart fault. postgres: the locks in a database of their own on DATABASE_URL's server
(required); its restart fault refuses and terminates the lock database's connections (the server stays up).

DATABASE_URL set: tasks live on that PostgreSQL server (fresh schemas, dropped afterwards); else PGlite.`;

function fail(message) {
  process.stderr.write(`${message}\n\n${usage}\n`);
  process.exit(2);
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      backend: { type: 'string' },
      'lease-by': { type: 'string' },
      buckets: { type: 'string' },
      prefetch: { type: 'string' },
      minutes: { type: 'string', default: '1' },
      seed: { type: 'string' },
      workers: { type: 'string' },
      tasks: { type: 'string' },
      concurrency: { type: 'string' },
      ttl: { type: 'string' },
      'drain-seconds': { type: 'string' },
      limit: { type: 'string' },
      'limit-share': { type: 'string' },
      out: { type: 'string' },
      'redis-persistence': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  }));
} catch (error) {
  fail(error.message);
}
if (values.help) {
  process.stdout.write(`${usage}\n`);
  process.exit(0);
}

function number(name, { integer = true, min = 1, max = Number.MAX_SAFE_INTEGER } = {}) {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value) || (integer && !Number.isInteger(value)) || value < min || value > max) {
    fail(`--${name}: '${raw}' is not ${integer ? 'a whole number' : 'a number'} from ${min} to ${max}`);
  }
  return value;
}

const BACKENDS = ['consul', 'dynamodb', 'etcd', 'redis', 'postgres'];
if (!BACKENDS.includes(values.backend)) {
  fail(`--backend: expected ${BACKENDS.join(', ')}${values.backend ? `, got '${values.backend}'` : ''}`);
}
const environment = process.env;
if (values.backend === 'postgres' && !environment.DATABASE_URL) {
  fail('--backend postgres: set DATABASE_URL (the locks get a database of their own on that server)');
}
const redisPersistence = values['redis-persistence'];
if (redisPersistence !== undefined) {
  if (values.backend !== 'redis') fail('--redis-persistence applies to --backend redis only');
  if (redisPersistence !== 'none' && redisPersistence !== 'aof')
    fail(`--redis-persistence: expected none or aof, got '${redisPersistence}'`);
}
const leaseBy = values['lease-by'] ?? 'task';
if (leaseBy !== 'task' && leaseBy !== 'bucket') fail(`--lease-by: expected task or bucket, got '${leaseBy}'`);
const buckets = number('buckets', { max: 1_024 });
if (buckets !== undefined && (buckets & (buckets - 1)) !== 0) {
  fail(`--buckets: '${values.buckets}' is not a power of two from 1 to 1024`);
}
if (leaseBy !== 'bucket' && (buckets !== undefined || values.prefetch !== undefined)) {
  fail(
    `--${buckets !== undefined ? 'buckets' : 'prefetch'} applies to bucket mode only: add --lease-by bucket`,
  );
}
const minutes = number('minutes', { integer: false, min: 0.1, max: 24 * 60 });
const drainSeconds = number('drain-seconds', { min: 5, max: 3_600 });
let limit = DEFAULT_LIMIT;
if (values.limit === 'none') limit = null;
else if (values.limit !== undefined) {
  const match = /^([A-Za-z0-9_.-]+)=(\d+)$/.exec(values.limit);
  if (!match || Number(match[2]) < 1)
    fail(`--limit: expected kind=n (n from 1) or none, got '${values.limit}'`);
  limit = { ...DEFAULT_LIMIT, kind: match[1], n: Number(match[2]) };
}
const limitShare = number('limit-share', { integer: false, min: 0, max: 1 });
if (limitShare !== undefined) {
  if (!limit) fail('--limit-share: applies with a limit only (not with --limit none)');
  limit = { ...limit, share: limitShare };
}
// Ctrl-C: exit at once; the harness kills its workers on exit.
for (const signal of ['SIGINT', 'SIGTERM'])
  process.once(signal, () => process.exit(signal === 'SIGINT' ? 130 : 143));

const result = await runChaos({
  backend: values.backend,
  leaseBy,
  buckets,
  prefetch: number('prefetch', { min: 0, max: 10_000 }),
  faultMs: Math.round(minutes * 60_000),
  seed: number('seed', { min: 0, max: 4_294_967_295 }),
  workers: number('workers', { max: 64 }),
  tasks: number('tasks', { max: 1_000_000 }),
  concurrency: number('concurrency', { max: 256 }),
  ttlMs: number('ttl', { min: 200, max: 60_000 }),
  drainMs: drainSeconds === undefined ? undefined : drainSeconds * 1_000,
  limit,
  redisPersistence,
  outDir: values.out,
  log: (line) => process.stdout.write(`${line}\n`),
});
process.stdout.write(`\n${result.report}\n\nlogs: ${result.outDir}\n`);
const replay = [
  'lease-by',
  'buckets',
  'prefetch',
  'workers',
  'tasks',
  'concurrency',
  'ttl',
  'drain-seconds',
  'limit',
  'limit-share',
  'redis-persistence',
]
  .filter((name) => values[name] !== undefined)
  .map((name) => ` --${name} ${values[name]}`)
  .join('');
const settings = Object.entries(process.env)
  .filter(([name]) => /^BATON_(CONSUL|DYNAMODB|ETCD|REDIS)_/.test(name) || name === 'DATABASE_URL')
  .map(([name, value]) => `${name}=${name === 'DATABASE_URL' ? '<url>' : value} `)
  .join('');
process.stdout.write(
  `reproduce: ${settings}npm run chaos -- --backend ${result.backend} --minutes ${minutes} --seed ${result.seed}${replay}\n`,
);
process.exit(result.ok ? 0 : 1);
