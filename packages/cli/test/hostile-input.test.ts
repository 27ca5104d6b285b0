import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { MAX_ERROR_MESSAGE_LENGTH } from '@baton/core';
import { createPostgresTaskSource, type PostgresTaskSource } from '@baton/source-postgres';
import { type ConsulTestServer, startConsulTestServer } from '@baton/test-servers/consul-server';
import { type PgliteServer, startPglite } from '@baton/test-servers/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baton, closedPort, type RunResult, tempFiles, uniqueSchema } from './helpers.js';

/**
 * Findings of a hostile-but-realistic user (issue 13), one row each: what was tried, and what baton must do.
 * Each row failed before its fix.
 */

const TWO_HOURS_BEHIND = -2 * 3_600_000;

let db: PgliteServer;
let consul: ConsulTestServer;
let files: Awaited<ReturnType<typeof tempFiles>>;
let closedDatabase: string;
const sources: PostgresTaskSource[] = [];

beforeAll(async () => {
  [db, consul, files] = await Promise.all([
    startPglite(),
    startConsulTestServer({ sessionTtlMinMs: 100 }),
    tempFiles({
      'ok.mjs': 'export default async () => ({ ok: true });\n',
      'huge-error.mjs': `export default async () => { throw new Error('boom:' + 'x'.repeat(5 * 1024 * 1024)); };\n`,
      'bigint-result.mjs': 'export default async () => ({ total: 10n });\n',
      'exit-0.mjs': 'export default async () => { process.exit(0); };\n',
      'exit-3.mjs': 'export default async () => { process.exit(3); };\n',
      // A CLI host whose clock runs two hours behind: every Date in the process, as on such a machine.
      'skewed-clock.mjs': `const skew = ${TWO_HOURS_BEHIND};
const RealDate = Date;
globalThis.Date = class extends RealDate {
  constructor(...args) { if (args.length === 0) super(RealDate.now() + skew); else super(...args); }
  static now() { return RealDate.now() + skew; }
};
`,
      'bom.json': `\uFEFF${JSON.stringify({ log: { level: 'warn' } })}`,
    }),
  ]);
  closedDatabase = `postgres://u@127.0.0.1:${await closedPort()}/db`;
});

afterAll(async () => {
  await Promise.all(sources.map((s) => s.close()));
  await files?.cleanup();
  await consul?.close();
  await db?.close();
});

/** A fresh schema on the shared PGlite: the environment to run baton in, and an in-process source on it. */
async function freshSchema() {
  const schema = uniqueSchema('h');
  const source = await createPostgresTaskSource({
    connectionString: db.connectionString,
    schema,
    poolSize: 2,
  });
  sources.push(source);
  const env = { DATABASE_URL: db.connectionString, BATON_PG_SCHEMA: schema };
  const run = (args: string[], extra: Record<string, string> = {}) =>
    baton(args, { env: { ...env, ...extra }, cwd: files.dir });
  return { schema, source, env, run };
}

type Schema = Awaited<ReturnType<typeof freshSchema>>;

/** The one JSON error object `--json` must print on stderr, and nothing else. */
function jsonError(result: RunResult): Record<string, unknown> {
  const lines = result.stderr.trim().split('\n');
  expect(lines, result.stderr).toHaveLength(1);
  return (JSON.parse(lines[0]!) as { error: Record<string, unknown> }).error;
}

interface Row<T = Schema> {
  /** The finding, as the user met it. */
  finding: string;
  /** Runs baton (and whatever the row needs around it) and checks the outcome. */
  check(t: T): Promise<void>;
}

/** A row that needs no database: it must fail with exit 2 before connecting (the database is a closed port). */
function refusedBeforeConnecting(
  finding: string,
  args: string[],
  expected: { field?: string; stderr: RegExp[]; env?: Record<string, string> },
): Row<void> {
  return {
    finding,
    async check() {
      const result = await baton(args, {
        env: { DATABASE_URL: closedDatabase, ...expected.env },
        cwd: files.dir,
      });
      expect(result.code, result.stderr).toBe(2);
      for (const re of expected.stderr) expect(result.stderr).toMatch(re);
      if (args.includes('--json')) {
        const error = jsonError(result);
        expect(error).toMatchObject({ code: 'USAGE', exitCode: 2 });
        if (expected.field) expect(error.field).toBe(expected.field);
      }
    },
  };
}

const usageRows: Array<Row<void>> = [
  refusedBeforeConnecting('--json with --count 0', ['--json', 'tasks', 'enqueue', 'x', '--count', '0'], {
    field: '--count',
    stderr: [/argument '0' is invalid/],
  }),
  refusedBeforeConnecting('--json with --payload {', ['--json', 'tasks', 'enqueue', 'x', '--payload', '{'], {
    field: '--payload',
    stderr: [/expected JSON/],
  }),
  refusedBeforeConnecting('--json with an unknown flag', ['--json', 'tasks', 'stats', '--frobnicate'], {
    field: '--frobnicate',
    stderr: [/unknown option '--frobnicate'/],
  }),
  refusedBeforeConnecting('--json with an unknown command', ['--json', 'frobnicate'], {
    field: '<command>',
    stderr: [/unknown command 'frobnicate'/],
  }),
  refusedBeforeConnecting('--json with no command', ['--json', 'tasks'], {
    field: '<command>',
    stderr: [/no command given/],
  }),
  refusedBeforeConnecting(
    '--tz Mars/Olympus',
    ['worker', '--handler', './ok.mjs', '--cron', '0 * * * *', '--tz', 'Mars/Olympus'],
    { stderr: [/--tz: 'Mars\/Olympus' is not a time zone/, /Fix: an IANA name/] },
  ),
  refusedBeforeConnecting(
    '--cron with a field out of range',
    ['worker', '--handler', './ok.mjs', '--cron', '99 * * * *'],
    { stderr: [/--cron: '99 \* \* \* \*' is not a valid cron expression/] },
  ),
  refusedBeforeConnecting(
    '--run-at 2025-02-30T00:00:00Z (would become March 2)',
    ['tasks', 'enqueue', 'x', '--run-at', '2025-02-30T00:00:00Z'],
    { stderr: [/--run-at/, /is not a date: 2025-02 has 28 days/] },
  ),
  refusedBeforeConnecting(
    '--run-at +1000000000h (PostgreSQL range error)',
    ['tasks', 'enqueue', 'x', '--run-at', '+1000000000h'],
    { stderr: [/--run-at/, /a delay of at most 100 years/] },
  ),
  refusedBeforeConnecting(
    '--max-attempts beyond what the library stores (2^31 − 1, not 2^53)',
    ['tasks', 'enqueue', 'x', '--max-attempts', '2147483648'],
    { stderr: [/--max-attempts/, /from 1 to 2147483647\./] },
  ),
  refusedBeforeConnecting('BATON_PG_MAX_ATTEMPTS=99999999999', ['tasks', 'stats'], {
    env: { BATON_PG_MAX_ATTEMPTS: '99999999999' },
    stderr: [/BATON_PG_MAX_ATTEMPTS: out of range: expected a whole number from 1 to 1000000/],
  }),
  refusedBeforeConnecting('tasks retry with an id beyond bigint', ['tasks', 'retry', '9223372036854775808'], {
    stderr: [/'9223372036854775808' is not a task id/],
  }),
  refusedBeforeConnecting('an empty --schema', ['--schema', '', 'tasks', 'stats'], {
    stderr: [/^baton: --schema: '' is not a schema name/],
  }),
  refusedBeforeConnecting('a schema name of 64 characters', ['--schema', 's'.repeat(64), 'tasks', 'stats'], {
    stderr: [/--schema: .* 1 to 63 lowercase letters/],
  }),
  refusedBeforeConnecting(
    'a NUL character in --payload (PostgreSQL 22P05)',
    ['tasks', 'enqueue', 'x', '--payload', '{"note":"a\\u0000b"}'],
    { stderr: [/--payload/, /NUL character/] },
  ),
  refusedBeforeConnecting(
    'a number beyond double precision in --payload (silently rounded)',
    ['tasks', 'enqueue', 'x', '--payload', '{"order":12345678901234567890}'],
    { stderr: [/--payload/, /12345678901234567890 cannot be stored exactly/, /send it as a string/] },
  ),
];

/** Where a task's due time lies, in ms after its creation (both on the database's clock). */
async function dueAfterCreation(source: PostgresTaskSource, id: string): Promise<number> {
  const task = (await source.get(id))!;
  return task.runAt.getTime() - task.createdAt.getTime();
}

const databaseRows: Row[] = [
  {
    finding: '--run-at +9s from a CLI host whose clock is two hours behind',
    async check(t) {
      const skewed = pathToFileURL(join(files.dir, 'skewed-clock.mjs')).href;
      const result = await t.run(['--json', 'tasks', 'enqueue', 'x', '--run-at', '+9s'], {
        NODE_OPTIONS: `--import=${skewed}`,
      });
      expect(result.code, result.stderr).toBe(0);
      const { ids } = JSON.parse(result.stdout) as { ids: string[] };
      // Nine seconds after the database stored it; the CLI's clock would have put it two hours earlier.
      expect(Math.abs((await dueAfterCreation(t.source, ids[0]!)) - 9_000)).toBeLessThanOrEqual(1_000);
    },
  },
  {
    finding: 'tasks retry of a task that does not exist',
    async check(t) {
      const result = await t.run(['tasks', 'retry', '999999']);
      expect(result.code).toBe(1);
      expect(result.stdout).toContain('no task 999999; nothing changed');
      const json = await t.run(['--json', 'tasks', 'retry', '999999']);
      expect(JSON.parse(json.stdout)).toEqual({ retried: 0, status: null });
    },
  },
  {
    finding: 'enqueueing twice with the same --id',
    async check(t) {
      const first = await t.run(['tasks', 'enqueue', 'report', '--id', 'report-1']);
      expect(first.stdout).toMatch(/^enqueued task (\d+) \(report\)$/m);
      const id = /enqueued task (\d+)/.exec(first.stdout)![1];
      const again = await t.run(['tasks', 'enqueue', 'report', '--id', 'report-1']);
      expect(again.code).toBe(0);
      expect(again.stdout).toContain(`task ${id} already has the id key 'report-1'; nothing was added`);
      const json = await t.run(['--json', 'tasks', 'enqueue', 'report', '--id', 'report-1']);
      expect(JSON.parse(json.stdout)).toEqual({ kind: 'report', count: 1, added: 0, ids: [id] });
      expect((await t.source.stats()).total).toBe(1);
    },
  },
  {
    finding: 'a config file saved with a UTF-8 byte order mark',
    async check(t) {
      const result = await t.run(['--config', 'bom.json', 'tasks', 'stats']);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
    },
  },
  {
    finding: 'a handler error of 5 MB (stored whole, logged as a 5 MB line)',
    async check(t) {
      const [id] = await t.source.enqueue({ kind: 'x', maxAttempts: 3 });
      const result = await t.run(['worker', '--handler', './huge-error.mjs', '--once']);
      expect(result.code).toBe(0);
      const { status, lastError } = (await t.source.get(id!))!;
      expect(status).toBe('failed');
      expect(lastError!.length).toBeLessThanOrEqual(MAX_ERROR_MESSAGE_LENGTH);
      expect(lastError).toMatch(/^boom:x+… \[truncated: \d+ characters in all\]$/);
      const failedLine = result.stdout.split('\n').find((line) => line.includes('task failed'))!;
      expect(failedLine.length).toBeLessThan(MAX_ERROR_MESSAGE_LENGTH + 1_000);
      expect(result.stdout.length).toBeLessThan(10 * MAX_ERROR_MESSAGE_LENGTH);
    },
  },
  {
    finding: 'a result that can never be stored (BigInt) was retried until attempts ran out',
    async check(t) {
      const [id] = await t.source.enqueue({ kind: 'x', maxAttempts: 5 });
      const result = await t.run(['worker', '--handler', './bigint-result.mjs', '--once']);
      expect(result.code).toBe(0);
      const task = (await t.source.get(id!))!;
      expect(task).toMatchObject({ status: 'dead', attempts: 1 });
      expect(task.lastError).toMatch(/result could not be stored/);
    },
  },
  {
    finding: 'a handler calling process.exit(0) (exit 0, no log line, task left running)',
    async check(t) {
      const [id] = await t.source.enqueue({ kind: 'x' });
      const locks = {
        BATON_BACKEND: 'consul',
        CONSUL_HTTP_ADDR: consul.url,
        BATON_CONSUL_ALLOW_SHORT_TTL: 'true',
        BATON_SESSION_TTL: '500ms',
        BATON_LOCK_DELAY: '0',
        BATON_CONSUL_PREFIX: `baton-${t.schema}/`,
      };
      const result = await t.run(['worker', '--handler', './exit-0.mjs', '--once'], locks);
      expect(result.code).toBe(1);
      const fatal = result.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .find((line) => line.level === 'fatal');
      expect(fatal?.msg).toMatch(/^process\.exit\(0\) was called while the worker was running/);
      expect(fatal).toMatchObject({ requestedExitCode: 0, exitCode: 1, stats: { claimed: 1 } });
      expect((await t.source.get(id!))?.status).toBe('running');
      // Nothing is lost: once the dead worker's lock session has expired, a later worker takes the task over.
      let holder: unknown = 'held';
      for (let i = 0; i < 60 && holder !== null; i++) {
        const shown = await t.run(['--json', 'locks', 'show', `task/${id}`], locks);
        expect(shown.code, shown.stderr).toBe(0);
        holder = JSON.parse(shown.stdout);
      }
      expect(holder).toBeNull();
      const later = await t.run(['worker', '--handler', './ok.mjs', '--once'], {
        ...locks,
        BATON_PG_RECLAIM_AFTER: '0',
      });
      expect(later.code, later.stderr).toBe(0);
      expect(await t.source.get(id!)).toMatchObject({ status: 'done', attempts: 2 });
    },
  },
  {
    finding: 'a handler calling process.exit(3) keeps its code and is logged',
    async check(t) {
      await t.source.enqueue({ kind: 'x' });
      const result = await t.run(['worker', '--handler', './exit-3.mjs', '--once']);
      expect(result.code).toBe(3);
      expect(result.stdout).toMatch(
        /"level":"fatal".*process\.exit\(3\) was called while the worker was running/,
      );
    },
  },
];

describe.concurrent('hostile input: refused before anything connects, exit 2, naming the setting', () => {
  it.each(usageRows.map((row) => [row.finding, row] as const))('%s', async (_finding, row) => {
    await row.check();
  });
});

describe.concurrent('hostile input against a database', () => {
  it.each(databaseRows.map((row) => [row.finding, row] as const))('%s', async (_finding, row) => {
    await row.check(await freshSchema());
  });
});
