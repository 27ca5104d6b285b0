import { type TestDatabase, testDatabase } from '@baton/test-servers/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PgPool, type PgQueryConfig, PostgresTaskSource, SHARDS } from '../src/index.js';
import { statements } from '../src/statements.js';
import { adminPool } from './support.js';

const TOTAL = 20_000;
const PAGE = 97;

let db: TestDatabase;
let admin: ReturnType<typeof adminPool>;
let schema: string;
/** Rows returned by each `due()` page query of the counting source. */
const pages: number[] = [];
let source: PostgresTaskSource;
let ids: string[];

beforeAll(async () => {
  db = await testDatabase();
  admin = adminPool(db);
  schema = await db.newSchema('stream');
  const counting: PgPool = {
    query: async (statement: string | PgQueryConfig, values?: unknown[]) => {
      const config = typeof statement === 'string' ? { text: statement, values } : statement;
      const result = await admin.query(config);
      if (config.text.includes('ORDER BY t.shard, t.id') && !config.text.includes('claimed')) {
        pages.push(result.rows.length);
      }
      return result;
    },
    connect: () => admin.connect(),
    end: async () => {},
  };
  source = new PostgresTaskSource({ pool: counting, schema });
  await source.migrate();
  ids = [];
  for (let offset = 0; offset < TOTAL; offset += 5_000) {
    ids.push(
      ...(await source.enqueue(
        Array.from({ length: 5_000 }, (_, n) => ({ kind: 'bulk', payload: { n: offset + n } })),
      )),
    );
  }
  await admin.query(`ANALYZE "${schema}".tasks`);
}, 300_000);

afterAll(async () => {
  await source?.close();
  await admin?.end();
  await db?.close();
});

describe(`due() over ${TOTAL} tasks with pages of ${PAGE}`, () => {
  it('visits every task exactly once, a page at a time, in one rotated (shard, id) order', async () => {
    pages.length = 0;
    const seen = new Set<string>();
    const order: Array<[number, bigint]> = [];
    for await (const task of source.due({ start: 0.37, pageSize: PAGE })) {
      expect(seen.has(task.id)).toBe(false);
      seen.add(task.id);
      order.push([task.shard, BigInt(task.id)]);
    }
    expect(seen.size).toBe(TOTAL);
    expect(Math.max(...pages)).toBeLessThanOrEqual(PAGE);
    expect(pages.length).toBeLessThanOrEqual(Math.ceil(TOTAL / PAGE) + 2);

    // Ascending by (shard, id) except at exactly one point: where the pass wraps to shard 0.
    const startShard = Math.floor(0.37 * SHARDS);
    let wraps = 0;
    for (let i = 1; i < order.length; i++) {
      const [ps, pid] = order[i - 1]!;
      const [s, id] = order[i]!;
      if (s < ps || (s === ps && id < pid)) wraps++;
    }
    expect(wraps).toBe(1);
    expect(order[0]![0]).toBeGreaterThanOrEqual(startShard);
    expect(order.at(-1)![0]).toBeLessThan(startShard);
  }, 120_000);

  it('spreads tasks over the shards so that starts spread workers out', async () => {
    const r = await admin.query<{ shards: number; min: number; max: number }>(
      `SELECT count(DISTINCT shard)::int AS shards, min(shard)::int AS min, max(shard)::int AS max
         FROM "${schema}".tasks`,
    );
    expect(r.rows[0]!.shards).toBeGreaterThan(SHARDS * 0.9);
    expect(r.rows[0]!.min).toBeGreaterThanOrEqual(0);
    expect(r.rows[0]!.max).toBeLessThan(SHARDS);
  });

  it('reads due pages from the partial open-tasks index once most tasks are done', async () => {
    await admin.query(`UPDATE "${schema}".tasks SET status = 'done', finished_at = now() WHERE id % 20 <> 0`);
    await admin.query(`VACUUM ANALYZE "${schema}".tasks`);
    const duePage = statements(schema).duePage({ bounded: true, kinds: true, window: true });
    const page = await admin.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${duePage}`, [
      300,
      '0',
      PAGE,
      30_000,
      700,
      ['bulk'],
      3_600_000,
    ]);
    expect(page.rows.map((r) => r['QUERY PLAN']).join('\n')).toMatch(/tasks_open_idx/);

    let count = 0;
    for await (const _ of source.due({ start: 0.9, pageSize: PAGE })) count++;
    expect(count).toBe(TOTAL / 20);
    expect((await source.stats()).done).toBe(TOTAL - TOTAL / 20);
  }, 120_000);
});
