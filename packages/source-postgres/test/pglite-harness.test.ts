import type { Socket } from 'node:net';
import { type PgliteServer, startPglite } from '@baton/test-servers/pglite';
import pg, { type Pool } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The embedded server every other test here relies on: prove it behaves like a server with many clients.
describe('startPglite: many pg connections over one PGlite session', () => {
  let server: PgliteServer;
  beforeAll(async () => {
    server = await startPglite();
  });
  afterAll(async () => {
    await server?.close();
  });

  function pool(max = 8): Pool {
    const p = new pg.Pool({ connectionString: server.connectionString, max });
    p.on('error', () => {});
    return p;
  }

  it('keeps concurrent extended-protocol round trips apart, large messages and errors included', async () => {
    const p = pool();
    const big = 'y'.repeat(1_500_000);
    const outcomes = await Promise.all(
      Array.from({ length: 120 }, async (_, i) => {
        if (i % 5 === 0) {
          const r = await p.query<{ n: number; k: number }>(`SELECT length($1::text) AS n, ${i} AS k`, [big]);
          return r.rows[0]!.n === big.length && r.rows[0]!.k === i;
        }
        if (i % 7 === 0) {
          const error = await p.query(`SELECT 1 / $1::int AS v, ${i} AS k`, [0]).catch((e: unknown) => e);
          return error instanceof Error && /division by zero/.test(error.message);
        }
        const r = await p.query<{ v: number; t: string; k: number }>(
          `SELECT $1::int AS v, $2::text AS t, ${i} AS k`,
          [i, `x${i}`],
        );
        const row = r.rows[0]!;
        return row.v === i && row.t === `x${i}` && row.k === i;
      }),
    );
    await p.end();
    expect(outcomes.filter((ok) => !ok)).toEqual([]);
  });

  it('runs one transaction at a time: others wait and see only committed data', async () => {
    const p = pool();
    await p.query('CREATE TABLE tx_probe (v int)');
    const a = await p.connect();
    await a.query('BEGIN');
    await a.query('INSERT INTO tx_probe VALUES (1)');
    let seen: number | undefined;
    const reader = p.query<{ n: string }>('SELECT count(*) AS n FROM tx_probe').then((r) => {
      seen = Number(r.rows[0]!.n);
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(seen).toBeUndefined();
    await a.query('INSERT INTO tx_probe VALUES (2)');
    await a.query('COMMIT');
    a.release();
    await reader;
    expect(seen).toBe(2);
    await p.end();
  });

  it('rolls back the open transaction of a client that disappears, and serves the others', async () => {
    const p = pool();
    await p.query('CREATE TABLE gone_probe (v int)');
    const client = new pg.Client({ connectionString: server.connectionString });
    client.on('error', () => {});
    await client.connect();
    await client.query('BEGIN');
    await client.query('INSERT INTO gone_probe VALUES (1)');
    const waiting = p.query<{ n: string }>('SELECT count(*) AS n FROM gone_probe');
    // Cut the socket under pg, as a crashed process would.
    (client as unknown as { connection: { stream: Socket } }).connection.stream.destroy();
    const r = await waiting;
    expect(Number(r.rows[0]!.n)).toBe(0);
    await p.end();
  });

  it('refuses connections while suspended and accepts them again on the same port', async () => {
    const p = pool(2);
    await p.query('SELECT 1');
    await server.suspend();
    try {
      // The first query may still pick the idle connection that was just cut; the next one must connect anew.
      const errors = [await p.query('SELECT 1').catch((e: unknown) => e)];
      errors.push(await p.query('SELECT 1').catch((e: unknown) => e));
      expect(errors.every((e) => e instanceof Error)).toBe(true);
      expect((errors[1] as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
    } finally {
      await server.resume();
    }
    const r = await p.query<{ v: number }>('SELECT 7 AS v');
    expect(r.rows[0]!.v).toBe(7);
    await p.end();
  });

  it('dropConnections ends in-flight and idle connections; new ones work', async () => {
    const p = pool(2);
    const hold = await p.connect();
    await hold.query('BEGIN');
    const blocked = p.query('SELECT 1');
    await new Promise((resolve) => setTimeout(resolve, 50));
    server.dropConnections();
    await expect(blocked).rejects.toThrow(/Connection terminated/);
    hold.release(true);
    const r = await p.query<{ v: number }>('SELECT 8 AS v');
    expect(r.rows[0]!.v).toBe(8);
    await p.end();
  });
});
