import { startConsulTestServer } from '@baton/test-servers/consul-server';
import { type PgliteServer, startPglite } from '@baton/test-servers/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baton, Running, tempFiles, uniqueSchema } from './helpers.js';

// `baton worker --lease-by bucket`, its settings and `baton tasks layout`, on the real binary.
let db: PgliteServer;
let consul: Awaited<ReturnType<typeof startConsulTestServer>>;
let files: Awaited<ReturnType<typeof tempFiles>>;

beforeAll(async () => {
  [db, consul, files] = await Promise.all([
    startPglite(),
    startConsulTestServer({ sessionTtlMinMs: 100 }),
    tempFiles({
      'echo.mjs': 'export default async function ({ task, fence }) { return { id: task.id, fence }; }\n',
    }),
  ]);
});

afterAll(async () => {
  await files?.cleanup();
  await consul?.close();
  await db?.close();
});

function inSchema(schema: string, extra: Record<string, string> = {}) {
  const env = { DATABASE_URL: db.connectionString, BATON_PG_SCHEMA: schema, ...extra };
  return {
    run: (args: string[], more: Record<string, string> = {}) =>
      baton(args, { env: { ...env, ...more }, cwd: files.dir }),
    start: (args: string[], more: Record<string, string> = {}) =>
      new Running(args, { env: { ...env, ...more }, cwd: files.dir }),
  };
}

// Nothing here is about expiry: a TTL that a loaded machine's stalls cannot outlast, so the counts below are
// those of workers that kept their sessions (a lost session would be re-counted, not hidden: see `held`).
const consulEnv = () => ({
  BATON_BACKEND: 'consul',
  CONSUL_HTTP_ADDR: consul.url,
  BATON_SESSION_TTL: '10s',
  BATON_LOCK_DELAY: '0',
});

describe.concurrent('bucket mode on the command line', () => {
  it('bad settings are usage errors naming the flag or variable; nothing runs', async () => {
    const t = inSchema(uniqueSchema());
    const rows: Array<[string[], Record<string, string>, RegExp]> = [
      [['--buckets', '3', '--lease-by', 'bucket'], {}, /--buckets.*power of two/],
      [['--buckets', '2048', '--lease-by', 'bucket'], {}, /--buckets/],
      [['--lease-by', 'pages'], {}, /--lease-by/],
      [['--buckets', '64'], {}, /--buckets applies to bucket mode only/],
      [['--prefetch', '4'], {}, /--prefetch applies to bucket mode only/],
      [[], { BATON_LEASE_BY: 'shard' }, /BATON_LEASE_BY: 'shard' is not a lease mode/],
      [['--lease-by', 'bucket'], { BATON_BUCKETS: '48' }, /BATON_BUCKETS: .*power of two/],
    ];
    for (const [flags, env, message] of rows) {
      const result = await t.run(['worker', '--handler', './echo.mjs', '--once', ...flags], env);
      expect(result.code, flags.join(' ')).toBe(2);
      expect(result.stderr, flags.join(' ')).toMatch(message);
    }
  });

  it('--once in bucket mode on Consul runs every task once and hands its buckets back', async () => {
    const t = inSchema(uniqueSchema(), consulEnv());
    expect((await t.run(['tasks', 'enqueue', 'echo', '--count', '300'])).code).toBe(0);
    const result = await t.run([
      'worker',
      '--handler',
      './echo.mjs',
      '--once',
      '--lease-by',
      'bucket',
      '--buckets',
      '8',
    ]);
    expect(result.code, result.stderr).toBe(0);
    const logs = result.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { msg: string; stats?: Record<string, number> });
    const stopped = logs.find((l) => l.msg === 'worker stopped')!;
    expect(stopped.stats).toMatchObject({
      completed: 300,
      bucketsAcquired: 8,
      bucketsReleased: 8,
      bucketsLost: 0,
      lockAttempts: 0,
    });
    expect(logs.filter((l) => l.msg === 'bucket acquired')).toHaveLength(8);
    const stats = await t.run(['--json', 'tasks', 'stats']);
    expect(JSON.parse(stats.stdout)).toMatchObject({ done: 300, total: 300 });
    const layout = await t.run(['--json', 'tasks', 'layout']);
    expect(JSON.parse(layout.stdout).layout).toMatchObject({ mode: 'bucket', buckets: 8, locks: 'consul' });
  });

  it('a worker of another layout is refused at start (exit 2, naming --lease-by); tasks layout --set changes it', async () => {
    const t = inSchema(uniqueSchema(), consulEnv());
    expect((await t.run(['tasks', 'enqueue', 'echo', '--count', '5'])).code).toBe(0);
    expect((await t.run(['worker', '--handler', './echo.mjs', '--once', '--lease-by', 'bucket'])).code).toBe(
      0,
    );
    const perTask = await t.run(['worker', '--handler', './echo.mjs', '--once']);
    expect(perTask.code).toBe(2);
    expect(perTask.stderr).toMatch(
      /--lease-by \(BATON_LEASE_BY\): .*bucket mode with 64 buckets on consul locks/,
    );
    const other = await t.run([
      'worker',
      '--handler',
      './echo.mjs',
      '--once',
      '--lease-by',
      'bucket',
      '--buckets',
      '16',
    ]);
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(/--buckets \(BATON_BUCKETS\)/);

    const usage = await t.run(['tasks', 'layout', '--set', 'bucket']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/--buckets/);
    const changed = await t.run(['tasks', 'layout', '--set', 'task']);
    expect(changed.code, changed.stderr).toBe(0);
    expect(changed.stdout).toMatch(/changed to task mode on consul locks \(epoch \d+\)/);
    expect((await t.run(['tasks', 'enqueue', 'echo'])).code).toBe(0);
    const now = await t.run(['worker', '--handler', './echo.mjs', '--once']);
    expect(now.code, now.stderr).toBe(0);
    expect(JSON.parse((await t.run(['--json', 'tasks', 'stats'])).stdout)).toMatchObject({ done: 6 });
  });

  it("two bucket-mode processes share the buckets; SIGTERM hands one worker's buckets to the other", async () => {
    const t = inSchema(uniqueSchema(), consulEnv());
    await t.run(['migrate']);
    const args = [
      'worker',
      '--handler',
      './echo.mjs',
      '--lease-by',
      'bucket',
      '--buckets',
      '16',
      '--every',
      '200ms',
    ];
    const a = t.start([...args, '--id', 'a']);
    const b = t.start([...args, '--id', 'b']);
    try {
      const held = (w: Running) =>
        w.lines.filter((l) => l.msg === 'bucket acquired').length -
        w.lines.filter((l) => l.msg === 'bucket handed back' || String(l.msg).startsWith('bucket lease lost'))
          .length;
      await until(
        () => held(a) === 8 && held(b) === 8,
        30_000,
        () => `8 + 8 buckets (a ${held(a)}, b ${held(b)})`,
      );
      expect((await t.run(['tasks', 'enqueue', 'echo', '--count', '100'])).code).toBe(0);
      await until(
        async () => JSON.parse((await t.run(['--json', 'tasks', 'stats'])).stdout).done === 100,
        30_000,
        () => 'the tasks',
      );
      b.kill('SIGTERM');
      expect(await b.exited).toBe(143);
      expect(b.lines.filter((l) => l.msg === 'bucket handed back' && l.reason === 'stop')).toHaveLength(8);
      await until(
        () => held(a) === 16,
        30_000,
        () => `a to hold all 16 (holds ${held(a)})`,
      );
    } finally {
      a.kill('SIGTERM');
      b.kill('SIGKILL');
      await Promise.all([a.exited, b.exited]);
    }
  }, 90_000);
});

async function until(
  condition: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
