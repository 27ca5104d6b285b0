#!/usr/bin/env node
// `npm run test:pack`: installs baton as a user who got it from the registry would. Packs every publishable
// package with `npm pack`, installs the tarballs into an empty project in the OS temp directory (outside the
// repository, so nothing resolves to the workspace), checks what each tarball ships, and runs `baton` there:
// --help, --version, the missing-demo message, a library import, and, with DATABASE_URL, `baton migrate`,
// `baton tasks enqueue` and `baton worker --once` with the memory and the PostgreSQL lock backends, then
// `baton demo` once @baton/demo is installed. Expects `npm run build` done. Prints PASS/FAIL/SKIP per check
// and exits 1 when any check failed. `--keep` leaves the temporary project in place.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { checkInstalledPackage } from './pack/package-checks.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** Every package a user may install. The demo is installed last: first `baton demo` must fail without it. */
const PUBLISHABLE = [
  'core',
  'source-postgres',
  'console',
  'backend-consul',
  'backend-dynamodb',
  'backend-etcd',
  'backend-postgres',
  'backend-redis',
  'cli',
  'testkit',
  'test-servers',
];
const LATE = ['demo'];

const HANDLER = `// Written by scripts/pack-install.mjs: returns what it saw so the test can read it back.
export default async function ({ task, fence }) {
  return { handled: task.kind, fence };
}
`;

/** A TypeScript user's first file: the `types` of every entry point, checked strictly (skipLibCheck off). */
const TYPES_CHECK = `// Written by scripts/pack-install.mjs.
import { createLockProvider, type LockProvider } from '@baton/core';
import * as consul from '@baton/backend-consul';
import * as dynamodb from '@baton/backend-dynamodb';
import * as etcd from '@baton/backend-etcd';
import * as postgresLocks from '@baton/backend-postgres';
import * as redis from '@baton/backend-redis';
import { main } from '@baton/cli';
import { createPostgresTaskSource, type PostgresTask } from '@baton/source-postgres';
import { lockProviderSuite } from '@baton/testkit';
import { startConsulTestServer } from '@baton/test-servers/consul-server';
import { startPglite } from '@baton/test-servers/pglite';

const provider: LockProvider = await createLockProvider({ backend: 'memory' });
const session = await provider.openSession();
const lease = await session.tryAcquire('types');
const fence: number | undefined = lease?.fence;
const source = await createPostgresTaskSource({ connectionString: 'postgres://localhost/none' });
const tasks: PostgresTask[] = await source.list();
const exitCode: Promise<number> = main(['node', 'baton', '--help']);
export const all = [fence, tasks, exitCode, consul, dynamodb, etcd, postgresLocks, redis, lockProviderSuite, startConsulTestServer, startPglite];
`;

const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    lib: ['ES2023', 'ESNext.Disposable'],
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    strict: true,
    noEmit: true,
    skipLibCheck: false,
    types: ['node'],
  },
  files: ['consumer.ts'],
};

const LIBRARY_CHECK = `// Written by scripts/pack-install.mjs: the library, imported by package name.
import { createLockProvider } from '@baton/core';
import { createPostgresTaskSource } from '@baton/source-postgres';

const locks = await createLockProvider({ backend: 'memory' });
const session = await locks.openSession();
const lease = await session.tryAcquire('pack-check');
if (!lease || !(lease.fence > 0)) throw new Error('memory lock: no lease');
await lease.release();
await session.destroy();
await locks.close();
if (typeof createPostgresTaskSource !== 'function') throw new Error('createPostgresTaskSource missing');
if (process.env.DATABASE_URL) {
  const source = await createPostgresTaskSource({
    connectionString: process.env.DATABASE_URL,
    schema: process.env.BATON_PG_SCHEMA,
  });
  try {
    const tasks = await source.list();
    const results = tasks.filter((task) => task.status === 'done' && task.result?.handled === task.kind).length;
    console.log(JSON.stringify({ results }));
  } finally {
    await source.close();
  }
}
`;

const started = Date.now();
const results = { pass: 0, fail: 0, skip: 0 };
const seconds = (ms) => `${(ms / 1000).toFixed(1)}s`;
function pass(name) {
  results.pass += 1;
  console.log(`PASS ${name}`);
}
function fail(name, detail) {
  results.fail += 1;
  console.log(`FAIL ${name}\n     ${String(detail).trim().split('\n').join('\n     ')}`);
}
function skip(name, why) {
  results.skip += 1;
  console.log(`SKIP ${name}: ${why}`);
}

// Children must not inherit `npm run`'s npm_* variables (npm_config_local_prefix would point npm back at
// the repository), nor the caller's baton settings: each command gets the database and schema it is given.
const baseEnv = Object.fromEntries(
  Object.entries(process.env).filter(([key]) => !/^(npm_|BATON_|DATABASE_URL$|INIT_CWD$)/i.test(key)),
);

function run(command, args, { cwd, env = {} } = {}) {
  const result = spawnSync(command, args, {
    cwd,
    env: { ...baseEnv, ...env },
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.error) throw result.error;
  return { code: result.status ?? 1, stdout: result.stdout, stderr: result.stderr };
}

function must(name, result, check = () => true) {
  const ok = result.code === 0 && check(result);
  if (ok) pass(name);
  else
    fail(
      name,
      `exit ${result.code}\nstdout: ${result.stdout.slice(-2000)}\nstderr: ${result.stderr.slice(-2000)}`,
    );
  return ok;
}

function pack(names, destination) {
  const workspaces = names.flatMap((name) => ['--workspace', `packages/${name}`]);
  const result = run('npm', ['pack', '--json', '--pack-destination', destination, ...workspaces], {
    cwd: ROOT,
  });
  if (result.code !== 0) throw new Error(`npm pack failed:\n${result.stderr}`);
  return JSON.parse(result.stdout).map((entry) => join(destination, entry.filename));
}

const work = realpathSync(mkdtempSync(join(tmpdir(), 'baton-pack-')));
const project = join(work, 'project');
const tarballDir = join(work, 'tarballs');
mkdirSync(project);
mkdirSync(tarballDir);
const keep = process.argv.includes('--keep');
// biome-ignore lint/suspicious/noUndeclaredEnvVars: a script of its own, not a turbo task.
const databaseUrl = process.env.DATABASE_URL || undefined;
const schema = `pack_${randomBytes(4).toString('hex')}`;
/** A task table records its lock backend: the PostgreSQL-locked worker gets a table of its own. */
const pgSchema = `${schema}_pg`;
const lockSchema = `${schema}_locks`;

try {
  console.log(`baton pack-and-install test in ${project}`);
  const tarballs = pack(PUBLISHABLE, tarballDir);
  const lateTarballs = pack(LATE, tarballDir);
  pass(`npm pack: ${[...tarballs, ...lateTarballs].length} tarballs`);

  writeFileSync(
    join(project, 'package.json'),
    `${JSON.stringify({ name: 'baton-pack-consumer', version: '1.0.0', private: true, type: 'module' }, null, 2)}\n`,
  );
  // What a TypeScript user adds, at the repository's versions (so npm's cache has them).
  const typescript = [
    `typescript@${installedVersion('typescript')}`,
    `@types/node@${installedVersion('@types/node')}`,
  ];
  const install = run('npm', ['install', '--no-audit', '--no-fund', ...tarballs, ...typescript], {
    cwd: project,
  });
  if (!must(`npm install of the tarballs (${seconds(Date.now() - started)} so far)`, install))
    throw new Error('stop');

  const cli = JSON.parse(readFileSync(join(ROOT, 'packages/cli/package.json'), 'utf8'));
  const resolved = run(
    'node',
    ['--input-type=module', '-e', "console.log(import.meta.resolve('@baton/cli'))"],
    {
      cwd: project,
    },
  );
  must('@baton/cli resolves inside the temporary project, not the repository', resolved, (r) =>
    fileURLToPath(r.stdout.trim()).startsWith(project),
  );
  for (const name of PUBLISHABLE) checkPackage(name);

  const baton = (args, env) => run('npx', ['--no', '--', 'baton', ...args], { cwd: project, env });
  must(
    'npx baton --help',
    baton(['--help']),
    (r) => r.stdout.includes('Usage: baton') && r.stdout.includes('worker'),
  );
  must('npx baton --version', baton(['--version']), (r) => r.stdout.trim() === cli.version);
  const demo = baton(['demo']);
  if (
    demo.code !== 0 &&
    demo.stderr.includes('@baton/demo') &&
    demo.stderr.includes('npm install @baton/demo')
  )
    pass(`npx baton demo without @baton/demo fails (exit ${demo.code}) naming the package`);
  else fail('npx baton demo without @baton/demo', `exit ${demo.code}\nstderr: ${demo.stderr}`);

  writeFileSync(join(project, 'library.mjs'), LIBRARY_CHECK);
  writeFileSync(join(project, 'handler.mjs'), HANDLER);
  checkTypes();
  must(
    'library import of @baton/core (memory lock) and @baton/source-postgres',
    run('node', ['library.mjs'], { cwd: project }),
  );

  if (!databaseUrl) {
    skip(
      'baton migrate, tasks enqueue, worker --once (memory and postgres locks), library against PostgreSQL, baton demo',
      'DATABASE_URL is not set (e.g. DATABASE_URL=postgres://postgres:baton@127.0.0.1:5432/baton_ci npm run test:pack)',
    );
  } else {
    const env = { DATABASE_URL: databaseUrl, BATON_PG_SCHEMA: schema, BATON_LOG_LEVEL: 'warn' };
    must(`npx baton migrate (schema ${schema})`, baton(['migrate'], env));
    must(
      'npx baton tasks enqueue pack-memory -n 3',
      baton(['tasks', 'enqueue', 'pack-memory', '-n', '3', '-p', '{"n":1}'], env),
    );
    must(
      'npx baton worker --once --handler ./handler.mjs (BATON_BACKEND=memory)',
      baton(['worker', '--once', '--handler', './handler.mjs'], { ...env, BATON_BACKEND: 'memory' }),
    );
    must(
      'npx baton tasks stats --json: 3 done',
      baton(['tasks', 'stats', '--json'], env),
      (r) => doneCount(r) === 3,
    );
    const pgEnv = { ...env, BATON_PG_SCHEMA: pgSchema };
    must(`npx baton migrate (schema ${pgSchema})`, baton(['migrate'], pgEnv));
    must(
      'npx baton tasks enqueue pack-postgres -n 2',
      baton(['tasks', 'enqueue', 'pack-postgres', '-n', '2'], pgEnv),
    );
    must(
      `npx baton worker --once --handler ./handler.mjs (BATON_BACKEND=postgres, locks in ${lockSchema})`,
      baton(['worker', '--once', '--handler', './handler.mjs'], {
        ...pgEnv,
        BATON_BACKEND: 'postgres',
        BATON_PG_LOCK_SCHEMA: lockSchema,
      }),
    );
    must(
      'npx baton tasks stats --json: 2 done',
      baton(['tasks', 'stats', '--json'], pgEnv),
      (r) => doneCount(r) === 2,
    );
    must(
      'library: @baton/source-postgres reads the handler results the workers wrote',
      run('node', ['library.mjs'], { cwd: project, env }),
      (r) => r.stdout.includes('"results":3'),
    );

    const demoInstall = run('npm', ['install', '--no-audit', '--no-fund', ...lateTarballs], { cwd: project });
    if (must('npm install of the @baton/demo tarball', demoInstall)) {
      checkPackage('demo');
      must(
        'npx baton demo --tasks 40 --workers 2 (@baton/demo installed)',
        baton(['demo', '--tasks', '40', '--workers', '2']),
      );
    }
  }
} catch (error) {
  if (error.message !== 'stop') fail('unexpected error', error.stack ?? error);
} finally {
  if (databaseUrl) await dropSchemas();
  if (keep) console.log(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}

console.log(
  `\npack-and-install: ${results.pass} passed, ${results.fail} failed, ${results.skip} skipped in ${seconds(Date.now() - started)}`,
);
process.exitCode = results.fail > 0 ? 1 : 0;

function checkPackage(name) {
  const problems = checkInstalledPackage(join(project, 'node_modules/@baton', name));
  if (problems.length === 0)
    pass(`@baton/${name} tarball: entry points present, no stale or test files, imports declared`);
  else fail(`@baton/${name} tarball`, problems.join('\n'));
}

function installedVersion(name) {
  return JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;
}

/**
 * Type-checks a consumer file against the installed packages. Only diagnostics in @baton's own declaration
 * files or in the consumer fail the check: third-party declarations (PGlite's need the DOM library,
 * ioredis' an untyped module) are theirs to fix and a user's skipLibCheck hides them.
 */
function checkTypes() {
  writeFileSync(join(project, 'consumer.ts'), TYPES_CHECK);
  writeFileSync(join(project, 'tsconfig.json'), `${JSON.stringify(TSCONFIG, null, 2)}\n`);
  const result = run('node', [join(project, 'node_modules/typescript/bin/tsc'), '-p', '.'], { cwd: project });
  const lines = result.stdout.split('\n').filter((line) => /^\S.*\(\d+,\d+\): error /.test(line));
  const ours = lines.filter(
    (line) => line.startsWith('consumer.ts') || line.startsWith('node_modules/@baton/'),
  );
  if (ours.length === 0 && (result.code === 0 || lines.length > 0))
    pass(
      `tsc --strict (skipLibCheck off) on a consumer of every entry point (${lines.length - ours.length} third-party diagnostics ignored)`,
    );
  else fail('tsc on a consumer of every entry point', ours.join('\n') || result.stdout || result.stderr);
}

function doneCount(result) {
  return JSON.parse(result.stdout).done;
}

async function dropSchemas() {
  const client = new pg.Client({ connectionString: databaseUrl });
  try {
    await client.connect();
    for (const name of [schema, pgSchema, lockSchema])
      await client.query(`DROP SCHEMA IF EXISTS "${name}" CASCADE`);
  } catch (error) {
    fail(`dropping schemas ${schema}, ${pgSchema} and ${lockSchema}`, error.message);
  } finally {
    await client.end().catch(() => {});
  }
}
