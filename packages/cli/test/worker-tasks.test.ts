import { readFile } from 'node:fs/promises';
import { createPostgresTaskSource, type PostgresTaskSource } from '@baton/source-postgres';
import { startConsulTestServer } from '@baton/test-servers/consul-server';
import { type PgliteServer, startPglite } from '@baton/test-servers/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baton, Running, tempFiles, uniqueSchema } from './helpers.js';

let db: PgliteServer;
let files: Awaited<ReturnType<typeof tempFiles>>;

beforeAll(async () => {
  [db, files] = await Promise.all([
    startPglite(),
    tempFiles({
      'echo.mjs': `export default async function ({ task, fence }) {
  await new Promise((r) => setTimeout(r, 5));
  return { echoed: task.payload, fence };
}
`,
      'kinds.mjs': `export const kinds = {
  a: async () => 'did a',
  b: async () => 'did b',
};
`,
      'invalid.mjs': `export async function handler({ task }) {
  throw Object.assign(new Error('payload rejected: ' + JSON.stringify(task.payload)), { code: 'TASK_INVALID' });
}
`,
      'leader.mjs': `import { appendFileSync } from 'node:fs';
export default async function () {
  return 'ran';
}
// Records each term on the file named by LEADER_LOG: start, then end once told to stop.
export async function leader({ term, signal }) {
  const who = process.env.WORKER_NAME;
  appendFileSync(process.env.LEADER_LOG, 'start ' + who + ' ' + term + '\\n');
  await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
  await new Promise((resolve) => setTimeout(resolve, 100));
  appendFileSync(process.env.LEADER_LOG, 'end ' + who + ' ' + term + '\\n');
}
`,
      'slow-loading.mjs': `process.stderr.write('handler module loading\\n');
await new Promise((resolve) => setTimeout(resolve, 1500));
export default async function () {
  return 'ran';
}
`,
      'deaf.mjs': `export default async function () {
  // Ignores its abort signal: only the third stop signal ends the process at once.
  await new Promise((resolve) => setTimeout(resolve, 30_000));
  return 'finished';
}
`,
      'slow.mjs': `export default async function ({ signal }) {
  await new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, 1500);
    signal.addEventListener('abort', () => { clearTimeout(timer); reject(signal.reason); });
  });
  return 'finished';
}
`,
    }),
  ]);
});

afterAll(async () => {
  await files?.cleanup();
  await db?.close();
});

const sources: PostgresTaskSource[] = [];
afterAll(async () => {
  await Promise.all(sources.map((s) => s.close()));
});

/** Runs baton against the shared PGlite, in a schema of the test's own. */
function inSchema(schema: string) {
  const env = { DATABASE_URL: db.connectionString, BATON_PG_SCHEMA: schema };
  let source: PostgresTaskSource | undefined;
  const open = async () => {
    if (!source) {
      source = await createPostgresTaskSource({
        connectionString: db.connectionString,
        schema,
        poolSize: 2,
      });
      sources.push(source);
    }
    return source;
  };
  return {
    env,
    /** The same tasks, read in this process (to check what the binary did without spawning another). */
    stats: async () => (await open()).stats(),
    /** The workers table (heartbeats). */
    workers: async () => (await open()).workers(),
    run: (args: string[], extra: Record<string, string> = {}) =>
      baton(args, { env: { ...env, ...extra }, cwd: files.dir }),
    json: async <T>(args: string[], extra: Record<string, string> = {}): Promise<T> => {
      const result = await baton(['--json', ...args], { env: { ...env, ...extra }, cwd: files.dir });
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      return JSON.parse(result.stdout) as T;
    },
    start: (args: string[], extra: Record<string, string> = {}) =>
      new Running(args, { env: { ...env, ...extra }, cwd: files.dir }),
  };
}

interface Stats {
  pending: number;
  running: number;
  done: number;
  failed: number;
  dead: number;
  total: number;
}

interface TaskJson {
  id: string;
  kind: string;
  status: string;
  payload: unknown;
  result: unknown;
  fence: number | null;
  runAt: string;
  lastError: string | null;
}

describe('migrate', () => {
  it('creates the schema once, then reports it up to date', async () => {
    const t = inSchema(uniqueSchema());
    const first = await t.json<{ from: number; to: number; applied: number[] }>(['migrate']);
    expect(first.from).toBe(0);
    expect(first.applied.length).toBeGreaterThan(0);
    const again = await t.run(['migrate']);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`schema is up to date (version ${first.to})`);
  });
});

describe.concurrent('tasks', () => {
  it('enqueue, list and stats', async () => {
    const t = inSchema(uniqueSchema());
    const added = await t.json<{ count: number; ids: string[] }>([
      'tasks',
      'enqueue',
      'email',
      '--payload',
      '{"to":"ada@example.com"}',
      '--count',
      '3',
    ]);
    expect(added.count).toBe(3);
    const later = await t.json<{ ids: string[] }>(['tasks', 'enqueue', 'report', '--run-at', '+1h']);
    const listed = await t.json<TaskJson[]>(['tasks', 'list']);
    expect(listed.map((task) => task.id)).toEqual([...added.ids, ...later.ids]);
    expect(listed[0]).toMatchObject({ kind: 'email', status: 'pending', payload: { to: 'ada@example.com' } });
    expect(Date.parse(listed[3]!.runAt)).toBeGreaterThan(Date.now() + 50 * 60_000);
    expect(await t.json<TaskJson[]>(['tasks', 'list', '--kind', 'report'])).toHaveLength(1);
    expect(await t.json<Stats>(['tasks', 'stats'])).toMatchObject({ pending: 4, total: 4 });
    const human = await t.run(['tasks', 'list', '--limit', '2']);
    expect(human.stdout).toMatch(/^ID\s+KIND\s+STATUS/);
    expect(human.stdout.trim().split('\n')).toHaveLength(3);
  });

  it('an idempotency key adds a task once', async () => {
    const t = inSchema(uniqueSchema());
    const first = await t.json<{ ids: string[] }>(['tasks', 'enqueue', 'invoice', '--id', 'invoice-2025-01']);
    const second = await t.json<{ ids: string[] }>([
      'tasks',
      'enqueue',
      'invoice',
      '--id',
      'invoice-2025-01',
    ]);
    expect(second.ids).toEqual(first.ids);
    expect((await t.json<Stats>(['tasks', 'stats'])).total).toBe(1);
  });

  it('refused input enqueues nothing', async () => {
    const t = inSchema(uniqueSchema());
    await t.json(['migrate']);
    for (const args of [
      ['tasks', 'enqueue', 'email', '--payload', '{"to":'],
      ['tasks', 'enqueue', 'email', '--count', '0'],
      ['tasks', 'enqueue', 'email', '--count', '2', '--id', 'k'],
      ['tasks', 'enqueue', 'email', '--run-at', 'tomorrowish'],
      ['tasks', 'enqueue', 'email', '--max-attempts', '0'],
    ]) {
      const result = await t.run(args);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr).not.toBe('');
    }
    expect((await t.json<Stats>(['tasks', 'stats'])).total).toBe(0);
  });
});

describe.concurrent('worker', () => {
  it('--once runs every due task and writes results fenced; a task not yet due waits', async () => {
    const t = inSchema(uniqueSchema());
    await t.json(['tasks', 'enqueue', 'echo', '--payload', '{"n":7}', '--count', '20']);
    await t.json(['tasks', 'enqueue', 'echo', '--run-at', '+1h']);
    const result = await t.run(['worker', '--handler', './echo.mjs', '--once', '--concurrency', '4']);
    expect(result.code).toBe(0);
    const logs = result.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { msg: string; stats?: { completed: number } });
    expect(logs.find((l) => l.msg === 'worker started')).toBeDefined();
    expect(logs.filter((l) => l.msg === 'task completed')).toHaveLength(20);
    expect(logs.find((l) => l.msg === 'worker stopped')?.stats?.completed).toBe(20);
    expect(await t.stats()).toMatchObject({ done: 20, pending: 1 });
    const done = await t.json<TaskJson[]>(['tasks', 'list', '--status', 'done', '--limit', '1']);
    expect(done[0]!.result).toEqual({ echoed: { n: 7 }, fence: done[0]!.fence });
  });

  it('a kinds map takes only its kinds', async () => {
    const t = inSchema(uniqueSchema());
    for (const kind of ['a', 'b', 'c']) await t.json(['tasks', 'enqueue', kind]);
    const result = await t.run(['worker', '--handler', './kinds.mjs', '--once']);
    expect(result.code).toBe(0);
    const tasks = await t.json<TaskJson[]>(['tasks', 'list']);
    expect(tasks.map((task) => [task.kind, task.status, task.result])).toEqual([
      ['a', 'done', 'did a'],
      ['b', 'done', 'did b'],
      ['c', 'pending', null],
    ]);
  });

  it('a task the handler rejects as invalid is dead; tasks retry brings it back', async () => {
    const t = inSchema(uniqueSchema());
    const { ids } = await t.json<{ ids: string[] }>([
      'tasks',
      'enqueue',
      'charge',
      '--payload',
      '{"amount":-1}',
    ]);
    expect((await t.run(['worker', '--handler', './invalid.mjs', '--once'])).code).toBe(0);
    const [dead] = await t.json<TaskJson[]>(['tasks', 'list', '--status', 'dead']);
    expect(dead?.lastError).toContain('payload rejected');
    expect(await t.json(['tasks', 'retry', '--dead'])).toEqual({ retried: 1 });
    expect((await t.json<TaskJson[]>(['tasks', 'list']))[0]?.status).toBe('pending');
    const notRetryable = await t.run(['tasks', 'retry', ids[0]!]);
    expect(notRetryable.code).toBe(1);
    expect(notRetryable.stdout).toContain('nothing changed');
    expect((await t.run(['tasks', 'retry', ids[0]!, '--dead'])).code).toBe(2);
  });

  it('tasks prune deletes finished tasks older than the age; pending ones and younger ones stay', async () => {
    const t = inSchema(uniqueSchema());
    await t.json(['tasks', 'enqueue', 'a', '--count', '3']);
    expect((await t.run(['worker', '--handler', './kinds.mjs', '--once'])).code).toBe(0);
    await t.json(['tasks', 'enqueue', 'charge', '--payload', '{"amount":-1}']);
    expect((await t.run(['worker', '--handler', './invalid.mjs', '--once'])).code).toBe(0);
    await t.json(['tasks', 'enqueue', 'later', '--count', '2']);
    expect(await t.stats()).toMatchObject({ done: 3, dead: 1, pending: 2 });
    expect(await t.json(['tasks', 'prune', '--older-than', '1h'])).toEqual({ done: 0, dead: 0, batches: 1 });
    expect(await t.json(['tasks', 'prune', '--older-than', '0ms', '--batch', '2'])).toEqual({
      done: 3,
      dead: 0,
      // 6 rows in full batches of 2, then one that finds the end of the table.
      batches: 4,
    });
    expect(await t.json(['tasks', 'prune', '--older-than', '0ms', '--only-dead'])).toMatchObject({ dead: 1 });
    expect(await t.stats()).toMatchObject({ done: 0, dead: 0, pending: 2, total: 2 });
    const both = await t.run(['tasks', 'prune', '--older-than', '0ms', '--dead', '--only-dead']);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('--only-dead');
    const missing = await t.run(['tasks', 'prune']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--older-than');
  });

  it('SIGTERM stops gracefully: the running handler finishes, exit 143', async () => {
    const t = inSchema(uniqueSchema());
    await t.json(['tasks', 'enqueue', 'slow']);
    const worker = t.start(['worker', '--handler', './slow.mjs', '--every', '200ms', '--log-level', 'debug']);
    await worker.waitFor((line) => line.msg === 'task started');
    worker.kill('SIGTERM');
    expect(await worker.exited).toBe(143);
    const stopped = await worker.waitFor((line) => line.msg === 'worker stopped');
    expect((stopped.stats as { completed: number }).completed).toBe(1);
    expect(await t.stats()).toMatchObject({ done: 1, running: 0 });
  });

  it('publishes a heartbeat on --heartbeat-every; SIGTERM marks it stopped; off publishes none', async () => {
    const t = inSchema(uniqueSchema());
    await t.json(['tasks', 'enqueue', 'echo', '--count', '3']);
    const worker = t.start([
      'worker',
      '--handler',
      './echo.mjs',
      '--id',
      'beater',
      '--heartbeat-every',
      '200ms',
    ]);
    const beats = async () => (await t.workers()).find((w) => w.workerId === 'beater');
    const deadline = Date.now() + 30_000;
    while ((await beats())?.counters.completed !== 3 || (await beats())?.previous === null) {
      if (Date.now() > deadline) throw new Error(`no heartbeat with 3 tasks done: ${worker.stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(await beats()).toMatchObject({ state: 'running', intervalMs: 200, mode: 'task', running: 0 });
    worker.kill('SIGTERM');
    expect(await worker.exited).toBe(143);
    expect(await beats()).toMatchObject({ state: 'stopped', pid: worker.child.pid });

    const silent = t.start(['worker', '--handler', './echo.mjs', '--id', 'quiet'], {
      BATON_HEARTBEAT_EVERY: 'off',
    });
    await t.json(['tasks', 'enqueue', 'echo']);
    await silent.waitFor((line) => line.msg === 'task completed');
    silent.kill('SIGTERM');
    expect(await silent.exited).toBe(143);
    expect((await t.workers()).map((w) => w.workerId)).toEqual(['beater']);
  });

  it('SIGTERM while starting up (handler module still loading) exits 143, never 0, and runs nothing', async () => {
    const t = inSchema(uniqueSchema());
    await t.json(['tasks', 'enqueue', 'echo']);
    const worker = t.start(['worker', '--handler', './slow-loading.mjs', '--every', '200ms']);
    await new Promise<void>((resolve) => {
      const check = () => {
        if (worker.stderr.includes('handler module loading')) resolve();
        else setTimeout(check, 20);
      };
      check();
    });
    worker.kill('SIGTERM');
    expect(await worker.exited).toBe(143);
    expect(worker.lines.find((line) => line.msg === 'worker started')).toBeUndefined();
    expect(await t.stats()).toMatchObject({ pending: 1, running: 0, done: 0 });
  });

  it('stop signals escalate: graceful, then handlers aborted, then a third exits at once (143)', async () => {
    const t = inSchema(uniqueSchema());
    await t.json(['tasks', 'enqueue', 'deaf']);
    const worker = t.start([
      'worker',
      '--handler',
      './deaf.mjs',
      '--every',
      '200ms',
      '--stop-grace',
      '1h',
      '--log-level',
      'debug',
    ]);
    await worker.waitFor((line) => line.msg === 'task started');
    worker.kill('SIGTERM');
    await worker.waitFor((line) => line.msg === 'stopping: no new tasks; running handlers may finish');
    worker.kill('SIGTERM');
    await worker.waitFor((line) => line.msg === 'stopping now: aborting running handlers');
    worker.kill('SIGTERM');
    expect(await worker.exited).toBe(143);
    // It exited without finishing the stop (the handler ignores its signal), and not as an unplanned exit.
    expect(worker.lines.find((line) => line.msg === 'worker stopped')).toBeUndefined();
    expect(worker.lines.find((line) => line.level === 'fatal')).toBeUndefined();
  });

  it('SIGINT exits 130', async () => {
    const t = inSchema(uniqueSchema());
    const worker = t.start(['worker', '--handler', './echo.mjs', '--every', '200ms']);
    await worker.waitFor((line) => line.msg === 'worker started');
    worker.kill('SIGINT');
    expect(await worker.exited).toBe(130);
    await worker.waitFor((line) => line.msg === 'worker stopped');
  });

  it('reads its settings from a config file', async () => {
    const schema = uniqueSchema();
    const config = await tempFiles({
      'baton.json': JSON.stringify({
        database: { url: db.connectionString, schema },
        worker: { handler: '../' + files.dir.split('/').pop() + '/echo.mjs', once: true, concurrency: 2 },
        log: { level: 'warn' },
      }),
    });
    try {
      const t = inSchema(schema);
      await t.json(['tasks', 'enqueue', 'echo', '--count', '3']);
      const result = await baton(['worker', '--config', `${config.dir}/baton.json`]);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(result.stdout).not.toContain('task completed');
      expect((await t.stats()).done).toBe(3);
    } finally {
      await config.cleanup();
    }
  });

  it('--leader-key: one worker runs the leader export; when it stops, another takes over with a higher term', async () => {
    const consul = await startConsulTestServer();
    try {
      const t = inSchema(uniqueSchema());
      const leaderLog = `${files.dir}/leader-${uniqueSchema()}.log`;
      const env = { BATON_BACKEND: 'consul', CONSUL_HTTP_ADDR: consul.url, LEADER_LOG: leaderLog };
      const args = [
        'worker',
        '--handler',
        './leader.mjs',
        '--leader-key',
        'leader/cli-test',
        '--every',
        '200ms',
      ];
      await t.json(['tasks', 'enqueue', 'echo', '--count', '6']);
      const workers = {
        a: t.start([...args, '--id', 'a'], { ...env, WORKER_NAME: 'a' }),
        b: t.start([...args, '--id', 'b'], { ...env, WORKER_NAME: 'b' }),
      };
      const elected = (w: Running) => w.waitFor((line) => line.msg === 'leader elected');
      const first = await Promise.race([
        elected(workers.a).then((line) => ({ name: 'a' as const, line })),
        elected(workers.b).then((line) => ({ name: 'b' as const, line })),
      ]);
      const second = first.name === 'a' ? 'b' : 'a';
      expect(first.line).toMatchObject({ leaderKey: 'leader/cli-test' });
      expect(workers[second].lines.some((line) => line.msg === 'leader elected')).toBe(false);
      const leaderOf = await t.json<{ id: string; term: number }>(['leader', 'show', 'leader/cli-test'], env);
      expect(leaderOf).toMatchObject({ id: first.name, term: first.line.term });

      workers[first.name].kill('SIGTERM');
      expect(await workers[first.name].exited).toBe(143);
      const next = await elected(workers[second]);
      expect(next.term as number).toBeGreaterThan(first.line.term as number);
      workers[second].kill('SIGTERM');
      expect(await workers[second].exited).toBe(143);

      expect((await readFile(leaderLog, 'utf8')).trim().split('\n')).toEqual([
        `start ${first.name} ${first.line.term}`,
        `end ${first.name} ${first.line.term}`,
        `start ${second} ${next.term}`,
        `end ${second} ${next.term}`,
      ]);
      expect((await t.stats()).done).toBe(6);
    } finally {
      await consul.close();
    }
  }, 90_000);

  it('runs against Consul and leaves no lock behind', async () => {
    const consul = await startConsulTestServer();
    try {
      const t = inSchema(uniqueSchema());
      const lockEnv = { BATON_BACKEND: 'consul', CONSUL_HTTP_ADDR: consul.url };
      await t.json(['tasks', 'enqueue', 'echo', '--count', '10']);
      const result = await t.run(['worker', '--handler', './echo.mjs', '--once'], lockEnv);
      expect(result.code).toBe(0);
      expect((await t.stats()).done).toBe(10);
      const history = consul.history();
      expect(history.length).toBeGreaterThanOrEqual(10);
      expect(await t.json(['locks', 'list', 'task/'], lockEnv)).toEqual([]);
    } finally {
      await consul.close();
    }
  });
});

describe('metrics', () => {
  it('the Prometheus endpoint counts lock attempts, outcomes and handler time as tasks run', async () => {
    const t = inSchema(uniqueSchema());
    await t.json(['migrate']);
    const worker = t.start(['worker', '--handler', './echo.mjs', '--every', '200ms', '--metrics-port', '0']);
    try {
      const listening = await worker.waitFor((line) => line.msg === 'metrics listening');
      const url = listening.url as string;
      const scrape = async () => {
        const response = await fetch(url);
        expect(response.status).toBe(200);
        expect(response.headers.get('content-type')).toContain('text/plain');
        return response.text();
      };
      const before = await scrape();
      expect(metric(before, 'baton_tasks_total{outcome="completed"}')).toBe(0);
      expect(metric(before, 'baton_lock_attempts_total')).toBe(0);

      await t.json(['tasks', 'enqueue', 'echo', '--count', '6']);
      let after = '';
      for (let i = 0; i < 200 && metric(after, 'baton_tasks_total{outcome="completed"}') < 6; i++) {
        await new Promise((r) => setTimeout(r, 100));
        after = await scrape();
      }
      expect(metric(after, 'baton_tasks_total{outcome="completed"}')).toBe(6);
      expect(metric(after, 'baton_lock_attempts_total')).toBeGreaterThanOrEqual(6);
      expect(metric(after, 'baton_locks_acquired_total')).toBeGreaterThanOrEqual(6);
      expect(metric(after, 'baton_handler_duration_seconds_count{kind="echo",outcome="completed"}')).toBe(6);
      expect(metric(after, 'baton_stale_writes_total')).toBe(0);
      expect(metric(after, 'baton_lease_lost_total')).toBe(0);
      expect(after).toContain('baton_process_');
      expect((await fetch(url.replace('/metrics', '/nope'))).status).toBe(404);
    } finally {
      worker.kill('SIGTERM');
      await worker.exited;
    }
  });
});

/** The value of one sample in Prometheus text format (0 when absent). */
function metric(text: string, sample: string): number {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${sample} `)) return Number(line.slice(sample.length + 1));
  }
  return 0;
}
