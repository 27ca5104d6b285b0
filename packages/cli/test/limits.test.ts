import { type PgliteServer, startPglite } from '@baton/test-servers/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baton, tempFiles, uniqueSchema } from './helpers.js';

// `baton worker --limit kind=n` (repeatable) and the config file's `worker.limits`, on the real binary.
let db: PgliteServer;
let files: Awaited<ReturnType<typeof tempFiles>>;

beforeAll(async () => {
  [db, files] = await Promise.all([
    startPglite(),
    tempFiles({
      // Records the most handlers of the task's kind running at once in this process.
      'count.mjs': `const running = new Map();
const most = new Map();
export default async function ({ task }) {
  running.set(task.kind, (running.get(task.kind) ?? 0) + 1);
  most.set(task.kind, Math.max(most.get(task.kind) ?? 0, running.get(task.kind)));
  await new Promise((r) => setTimeout(r, 5));
  running.set(task.kind, running.get(task.kind) - 1);
  return { kind: task.kind, most: most.get(task.kind) };
}
`,
      'limited.mjs': `export { default } from './count.mjs';
export const limits = { partner: 1 };
`,
      'bad-limits.mjs': `export default () => undefined;
export const limits = { partner: 0 };
`,
    }),
  ]);
});

afterAll(async () => {
  await files?.cleanup();
  await db?.close();
});

function inSchema(schema: string) {
  const env = { DATABASE_URL: db.connectionString, BATON_PG_SCHEMA: schema, BATON_BACKEND: 'memory' };
  return {
    run: (args: string[]) => baton(args, { env, cwd: files.dir }),
    json: async <T>(args: string[]): Promise<T> => {
      const result = await baton(['--json', ...args], { env, cwd: files.dir });
      expect(result.code, result.stderr).toBe(0);
      return JSON.parse(result.stdout) as T;
    },
  };
}

interface LogLine {
  msg: string;
  limits?: Record<string, number>;
  stats?: { completed: number; limitSkipped: number };
}

describe.concurrent('baton worker --limit', () => {
  it('bad limits are usage errors naming the flag; nothing runs', async () => {
    const t = inSchema(uniqueSchema());
    const rows: Array<[string[], RegExp]> = [
      [['--limit', 'mail'], /--limit.*kind=n/],
      [['--limit', '=3'], /--limit.*kind=n/],
      [['--limit', 'mail=0'], /--limit.*from 1 to 1024/],
      [['--limit', 'mail=2', '--limit', 'mail=3'], /--limit.*given twice/],
    ];
    for (const [flags, message] of rows) {
      const result = await t.run(['worker', '--handler', './count.mjs', '--once', ...flags]);
      expect(result.code, flags.join(' ')).toBe(2);
      expect(result.stderr, flags.join(' ')).toMatch(message);
    }
  });

  it('runs a limited kind at most n at a time and leaves the skipped tasks pending, unclaimed', async () => {
    const t = inSchema(uniqueSchema());
    await t.json(['tasks', 'enqueue', 'partner', '--count', '12']);
    await t.json(['tasks', 'enqueue', 'other', '--count', '4']);
    const result = await t.run([
      'worker',
      '--handler',
      './count.mjs',
      '--once',
      '--concurrency',
      '8',
      '--limit',
      'partner=1',
      '--limit',
      'unused=5',
    ]);
    expect(result.code, result.stderr).toBe(0);
    const logs = result.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as LogLine);
    expect(logs.find((l) => l.msg === 'worker started')?.limits).toEqual({ partner: 1, unused: 5 });
    const stopped = logs.find((l) => l.msg === 'worker stopped')!;
    const done = await t.json<Array<{ kind: string; attempts: number; result: { most: number } }>>([
      'tasks',
      'list',
      '--status',
      'done',
    ]);
    const pending = await t.json<Array<{ kind: string; attempts: number }>>([
      'tasks',
      'list',
      '--status',
      'pending',
    ]);
    expect(done.filter((task) => task.kind === 'other')).toHaveLength(4);
    const partners = done.filter((task) => task.kind === 'partner');
    expect(partners.length).toBeGreaterThanOrEqual(1);
    expect(partners.every((task) => task.result.most === 1)).toBe(true);
    expect(partners.length + pending.length).toBe(12);
    expect(pending.every((task) => task.kind === 'partner' && task.attempts === 0)).toBe(true);
    expect(stopped.stats?.completed).toBe(4 + partners.length);
    expect(stopped.stats?.limitSkipped).toBeGreaterThanOrEqual(pending.length);
  });

  it('--lease-by bucket: runs the limited kind one at a time and every task once', async () => {
    const t = inSchema(uniqueSchema());
    await t.json(['tasks', 'enqueue', 'partner', '--count', '12']);
    await t.json(['tasks', 'enqueue', 'other', '--count', '4']);
    const result = await t.run([
      'worker',
      '--handler',
      './count.mjs',
      '--once',
      '--lease-by',
      'bucket',
      '--concurrency',
      '8',
      '--limit',
      'partner=1',
    ]);
    expect(result.code, result.stderr).toBe(0);
    const stopped = result.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as LogLine)
      .find((l) => l.msg === 'worker stopped')!;
    const done = await t.json<Array<{ kind: string; attempts: number; result: { most: number } }>>([
      'tasks',
      'list',
      '--status',
      'done',
    ]);
    // The worker frees its own permits, so a --once run drains the limited kind too, one task at a time.
    expect(done).toHaveLength(16);
    expect(done.filter((task) => task.kind === 'partner').every((task) => task.result.most === 1)).toBe(true);
    expect(done.every((task) => task.attempts === 1)).toBe(true);
    expect(stopped.stats?.completed).toBe(16);
    expect(stopped.stats?.limitSkipped).toBeGreaterThan(0);
  });

  it("takes the handler module's limits export; --limit wins over it; a bad one is refused naming it", async () => {
    const t = inSchema(uniqueSchema());
    await t.json(['tasks', 'enqueue', 'partner', '--count', '3']);
    const started = async (args: string[]) => {
      const result = await t.run(['worker', '--once', ...args]);
      expect(result.code, result.stderr).toBe(0);
      return result.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as LogLine)
        .find((l) => l.msg === 'worker started')?.limits;
    };
    expect(await started(['--handler', './limited.mjs'])).toEqual({ partner: 1 });
    expect(await started(['--handler', './limited.mjs', '--limit', 'partner=2'])).toEqual({ partner: 2 });
    const bad = await t.run(['worker', '--once', '--handler', './bad-limits.mjs']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/bad-limits\.mjs: limits\.partner is 0, expected a whole number from 1/);
  });

  it('reads worker.limits from the config file and refuses a bad one naming the field', async () => {
    const schema = uniqueSchema();
    const config = await tempFiles({
      'good.json': JSON.stringify({ worker: { limits: { partner: 2 } } }),
      'bad.json': JSON.stringify({ worker: { limits: { partner: 0 } } }),
    });
    try {
      const t = inSchema(schema);
      const bad = await t.run(['worker', '--config', `${config.dir}/bad.json`, '--handler', './count.mjs']);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/worker\.limits\.partner/);
      await t.json(['tasks', 'enqueue', 'partner', '--count', '2']);
      const good = await t.run([
        'worker',
        '--config',
        `${config.dir}/good.json`,
        '--handler',
        './count.mjs',
        '--once',
      ]);
      expect(good.code, good.stderr).toBe(0);
      const started = good.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as LogLine)
        .find((l) => l.msg === 'worker started');
      expect(started?.limits).toEqual({ partner: 2 });
    } finally {
      await config.cleanup();
    }
  });
});
