import { createPostgresTaskSource } from '@baton/source-postgres';
import { startConsulTestServer } from '@baton/test-servers/consul-server';
import { type PgliteServer, startPglite } from '@baton/test-servers/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baton, Running, tempFiles, uniqueSchema } from './helpers.js';

// `baton worker --retain-done/--retain-dead`: one elected worker of several applies the retention policy.

let db: PgliteServer;
let consul: Awaited<ReturnType<typeof startConsulTestServer>>;
let files: Awaited<ReturnType<typeof tempFiles>>;

beforeAll(async () => {
  [db, consul, files] = await Promise.all([
    startPglite(),
    startConsulTestServer({ sessionTtlMinMs: 100 }),
    tempFiles({ 'echo.mjs': 'export default async function () { return "ok"; }\n' }),
  ]);
});

afterAll(async () => {
  await files?.cleanup();
  await consul?.close();
  await db?.close();
});

/** Finished tasks, some aged past the policy (by `finished_at`, the database's clock), and unfinished ones. */
async function seed(schema: string) {
  const source = await createPostgresTaskSource({
    connectionString: db.connectionString,
    schema,
    poolSize: 2,
  });
  try {
    // The last one stays pending until a worker runs it (then done, but young).
    const ids = await source.enqueue(Array.from({ length: 8 }, () => ({ kind: 'echo' })));
    const done = ids.slice(0, 5);
    const dead = ids.slice(5, 7);
    for (const id of [...done, ...dead]) await source.claim(id, 1, 'seed');
    for (const id of done) await source.complete(id, 1, 'ok');
    for (const id of dead) await source.fail(id, 1, { message: 'bad', retryable: false });
    const old = [...done.slice(0, 3), dead[0]!];
    await db.db.query(
      `UPDATE "${schema}".tasks SET finished_at = now() - interval '2 days' WHERE id = ANY($1::bigint[])`,
      [old],
    );
    return { oldDone: done.slice(0, 3), oldDead: [dead[0]!], kept: [...done.slice(3), dead[1]!, ids[7]!] };
  } finally {
    await source.close();
  }
}

async function remaining(schema: string): Promise<string[]> {
  const result = await db.db.query<{ id: string }>(
    `SELECT id::text AS id FROM "${schema}".tasks ORDER BY id`,
  );
  return result.rows.map((row) => row.id);
}

describe('baton worker retention', () => {
  it('three workers: only the elected one prunes (logs and metrics say what); when it stops, another takes over', async () => {
    const schema = uniqueSchema('ret');
    const { oldDone, oldDead, kept } = await seed(schema);
    const env = {
      DATABASE_URL: db.connectionString,
      BATON_PG_SCHEMA: schema,
      BATON_BACKEND: 'consul',
      CONSUL_HTTP_ADDR: consul.url,
      BATON_RETAIN_DEAD: '24h',
    };
    const args = ['worker', '--handler', './echo.mjs', '--every', '500ms', '--metrics-port', '0'];
    const workers = ['a', 'b', 'c'].map(
      (id) =>
        new Running([...args, '--id', id, '--retain-done', '24h', '--retention-every', '200ms'], {
          env,
          cwd: files.dir,
        }),
    );
    try {
      const isRun = (line: Record<string, unknown>) =>
        typeof line.msg === 'string' && line.msg.startsWith('retention: deleted');
      const first = await Promise.race(workers.map((w) => w.waitFor(isRun).then(() => w)));
      // A few more runs of the leader, then nobody else may have run one.
      await first.waitFor(() => first.lines.filter(isRun).length >= 3);
      const runs = (w: Running) => w.lines.filter(isRun);
      for (const w of workers) if (w !== first) expect(runs(w)).toEqual([]);
      expect(runs(first)[0]).toMatchObject({
        done: oldDone.length,
        dead: oldDead.length,
        key: `retention/${schema}`,
      });
      expect(await remaining(schema)).toEqual(kept);

      const listening = await first.waitFor((line) => line.msg === 'metrics listening');
      const text = await (await fetch(`${listening.url as string}`)).text();
      const key = `key="retention/${schema}"`;
      expect(text).toContain(`baton_retention_deleted_total{${key},status="done"} ${oldDone.length}`);
      expect(text).toContain(`baton_retention_deleted_total{${key},status="dead"} ${oldDead.length}`);
      expect(text).toContain(`baton_retention_leader{${key}} 1`);
      const other = workers.find((w) => w !== first)!;
      const otherUrl = (await other.waitFor((line) => line.msg === 'metrics listening')).url as string;
      expect(await (await fetch(otherUrl)).text()).toContain(`baton_retention_leader{${key}} 0`);

      first.kill('SIGTERM');
      expect(await first.exited).toBe(143);
      const elected = (line: Record<string, unknown>) =>
        typeof line.msg === 'string' && line.msg.startsWith('retention: elected');
      const next = await Promise.race(
        workers.filter((w) => w !== first).map((w) => w.waitFor(elected).then(() => w)),
      );
      await next.waitFor(isRun);
      const third = workers.find((w) => w !== first && w !== next)!;
      expect(runs(third)).toEqual([]);
      expect(await remaining(schema)).toEqual(kept);
    } finally {
      for (const w of workers) w.kill('SIGTERM');
      await Promise.all(workers.map((w) => w.exited));
    }
  });

  it('retention settings alone, without an age, are a usage error; a bad variable names itself', async () => {
    const env = { DATABASE_URL: db.connectionString, BATON_PG_SCHEMA: uniqueSchema('ret') };
    const alone = await baton(['worker', '--handler', './echo.mjs', '--retention-every', '5m'], {
      env,
      cwd: files.dir,
    });
    expect(alone.code).toBe(2);
    expect(alone.stderr).toContain('--retention-every applies to retention only');
    const bad = await baton(['worker', '--handler', './echo.mjs'], {
      env: { ...env, BATON_RETAIN_DONE: 'forever' },
      cwd: files.dir,
    });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('BATON_RETAIN_DONE');
  });
});
