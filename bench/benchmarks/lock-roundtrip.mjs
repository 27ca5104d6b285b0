// lock-roundtrip: acquire+release pairs per second and latency, ours vs the raw client, per backend.

import { randomUUID } from 'node:crypto';
import { usableBackends } from '../lib/lock-backends.mjs';
import {
  BACKENDS,
  CONSUL_COUNTING_OPTIONS,
  CONSUL_SERVER_OPTIONS,
  openOurs,
  openRaw,
  serverKind,
} from '../lib/locks.mjs';
import { closedLoop, interleave } from '../lib/loop.mjs';
import { startServer } from '../lib/servers.mjs';
import { pairedRatio, spread } from '../lib/stats.mjs';
import { markdownTable, num, ratio, withSpread } from '../lib/table.mjs';

export default {
  name: 'lock-roundtrip',
  title: 'Lock round trip: ours vs the raw client',
  description:
    'Closed-loop acquire+release pairs on distinct keys (a new key per pair, as the worker locks each task ' +
    'once; and one key per lane reused, as a leader or cron lock), at concurrency 1 and 16, per backend. ' +
    'Ours: LockSession.tryAcquire + Lease.release on one session. Raw: the memory store called directly; ' +
    "Consul: the consul client's kv.set({acquire}) + kv.set({release}) with a session; DynamoDB: one " +
    'conditional UpdateItem (owner + fence) + one UpdateItem (clear owner); dynamodb-epoch: our DynamoDB ' +
    'backend in its `epoch` fence mode (released keys deleted, nothing left behind) against the same raw pair; etcd (a real etcd-server, skipped ' +
    "when not installed): the etcd3 client's txn `create_revision == 0 → put with lease` + a delete; PostgreSQL " +
    '(the local server or DATABASE_URL, skipped when there is none): `pg` calling the same acquire() and ' +
    'release() functions of the lock schema as the backend; redis (a real redis-server, skipped when not ' +
    'installed): ioredis `SET key NX PX` + `DEL`. Rounds interleave ours and raw ' +
    '(order rotating) so machine noise hits both; the ratio is taken per round, then the median.',
  async run(ctx) {
    const p = ctx.quick
      ? {
          backends: [...BACKENDS, 'dynamodb-epoch', 'etcd', 'postgres', 'redis'],
          concurrency: [1, 16],
          keys: ['new', 'same'],
          rounds: 1,
          roundMs: 150,
          warmupMs: 30,
        }
      : {
          backends: [...BACKENDS, 'dynamodb-epoch', 'etcd', 'postgres', 'redis'],
          concurrency: [1, 16],
          keys: ['new', 'same'],
          rounds: 4,
          roundMs: 500,
          warmupMs: 100,
        };
    const usable = await usableBackends(ctx, ctx.backends(p.backends));
    p.backends = usable.backends;
    const { postgres } = usable;
    p.requestCountPairs = ctx.quick ? 5 : 20;
    const rounds = [];
    const summary = [];
    const requestCounts = {};
    for (const backend of p.backends) {
      const kind = serverKind(backend);
      // Timed rounds: the server without request counting in front of it.
      const server =
        backend === 'postgres'
          ? postgres
          : kind
            ? await startServer(kind, kind === 'consul' ? CONSUL_SERVER_OPTIONS : {})
            : undefined;
      try {
        const ours = await openOurs(backend, server);
        const raw = await openRaw(backend, server);
        try {
          for (const concurrency of p.concurrency) {
            for (const keys of p.keys) {
              ctx.log(`${backend} c=${concurrency} keys=${keys}`);
              const runId = randomUUID().slice(0, 8);
              const byContestant = await interleave(['ours', 'raw'], p.rounds, async (who, round) => {
                const c = who === 'ours' ? ours : raw;
                const r = await closedLoop({
                  concurrency,
                  durationMs: p.roundMs,
                  warmupMs: p.warmupMs,
                  op: (lane, i) => pair(c, keyFor(keys, `${runId}/${who}/${round}`, lane, i)),
                  around: serverCpu(server),
                });
                const row = { backend, concurrency, keys, contestant: who, round, ...flat(r) };
                rounds.push(row);
                return row;
              });
              summary.push(summarise(backend, concurrency, keys, byContestant));
            }
          }
        } finally {
          await ours.close();
          await raw.close();
        }
      } finally {
        await server?.close();
      }
      requestCounts[backend] =
        backend === 'postgres'
          ? await countStatements(postgres, p.requestCountPairs)
          : await countRequests(backend, p.requestCountPairs);
    }
    for (const row of summary) row.requestsPerPair = requestCounts[row.backend];
    return {
      parameters: p,
      rounds,
      summary,
      table: table(summary),
      notes: notes(requestCounts),
    };
  },
};

/** Reads the server process's CPU right before and after the measured part of a round (none for memory). */
function serverCpu(server) {
  if (!server?.cpuMs) return undefined;
  return { before: () => server.cpuMs(), after: async (before) => (await server.cpuMs()) - before };
}

/**
 * Statements each contestant sends per acquire+release pair on PostgreSQL, counted at the client (every
 * `pg` query call, untimed): there is no request log to count at the server.
 */
async function countStatements(server, pairs) {
  const { default: pg } = await import('pg');
  const original = pg.Client.prototype.query;
  let calls = 0;
  pg.Client.prototype.query = function counted(...args) {
    calls++;
    return original.apply(this, args);
  };
  try {
    const out = {};
    for (const [who, open] of [
      ['ours', () => openOurs('postgres', server)],
      ['raw', () => openRaw('postgres', server)],
    ]) {
      const c = await open();
      try {
        out[who] = { byOp: {} };
        for (const keys of ['new', 'same']) {
          await pair(c, keyFor(keys, `count/${who}`, 0, -1));
          calls = 0;
          for (let i = 0; i < pairs; i++) await pair(c, keyFor(keys, `count/${who}`, 0, i));
          out[who][keys] = calls / pairs;
          out[who].byOp[keys] = { statement: calls / pairs };
        }
      } finally {
        await c.close();
      }
    }
    return out;
  } finally {
    pg.Client.prototype.query = original;
    await server.drop();
  }
}

function keyFor(mode, run, lane, i) {
  return mode === 'new' ? `rt/${run}/${lane}/${i}` : `rt/${run}/${lane}`;
}

async function pair(contestant, key) {
  const handle = await contestant.acquire(key);
  if (handle === null || handle === undefined)
    throw new Error(`${contestant.name}: ${key} unexpectedly held`);
  await contestant.release(key, handle);
}

function flat(r) {
  return {
    pairs: r.ops,
    elapsedMs: r.elapsedMs,
    pairsPerSec: r.opsPerSec,
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    cpuUsPerPair: r.cpuUsPerOp,
    serverCpuUsPerPair: r.around === undefined ? undefined : (r.around * 1000) / r.ops,
  };
}

function summarise(backend, concurrency, keys, by) {
  const get = (who, field) => by[who].map((r) => r[field]);
  return {
    backend,
    concurrency,
    keys,
    ours: {
      pairsPerSec: spread(get('ours', 'pairsPerSec')),
      p50Ms: spread(get('ours', 'p50Ms')),
      p99Ms: spread(get('ours', 'p99Ms')),
      cpuUsPerPair: spread(get('ours', 'cpuUsPerPair')),
      serverCpuUsPerPair: spread(get('ours', 'serverCpuUsPerPair')),
    },
    raw: {
      pairsPerSec: spread(get('raw', 'pairsPerSec')),
      p50Ms: spread(get('raw', 'p50Ms')),
      p99Ms: spread(get('raw', 'p99Ms')),
      cpuUsPerPair: spread(get('raw', 'cpuUsPerPair')),
      serverCpuUsPerPair: spread(get('raw', 'serverCpuUsPerPair')),
    },
    oursOverRaw: pairedRatio(get('ours', 'pairsPerSec'), get('raw', 'pairsPerSec')),
  };
}

/**
 * Requests each contestant sends per acquire+release pair, counted at a separate server instance (new keys
 * and a reused key), so that the timed rounds run without a counting hop.
 */
async function countRequests(backend, pairs) {
  const kind = serverKind(backend);
  if (!kind) return { ours: { new: 0, same: 0, byOp: {} }, raw: { new: 0, same: 0, byOp: {} } };
  const server = await startServer(
    kind,
    kind === 'consul' ? CONSUL_COUNTING_OPTIONS : { countRequests: true },
  );
  try {
    const out = {};
    for (const [who, open] of [
      ['ours', () => openOurs(backend, server)],
      ['raw', () => openRaw(backend, server)],
    ]) {
      const c = await open();
      try {
        out[who] = {};
        for (const keys of ['new', 'same']) {
          // One unmeasured pair first, so that one-time work (the first use of the reused key) is not counted.
          await pair(c, keyFor(keys, `count/${who}`, 0, -1));
          await server.reset();
          for (let i = 0; i < pairs; i++) await pair(c, keyFor(keys, `count/${who}`, 0, i));
          out[who][keys] = (await server.total()) / pairs;
          out[who].byOp ??= {};
          out[who].byOp[keys] = Object.fromEntries(
            Object.entries(await server.patterns()).map(([op, n]) => [op, n / pairs]),
          );
        }
      } finally {
        await c.close();
      }
    }
    return out;
  } finally {
    await server.close();
  }
}

function table(summary) {
  return markdownTable(
    [
      'backend',
      'conc.',
      'keys',
      'ours pairs/s',
      'raw pairs/s',
      'ours/raw',
      'ours p50 / p99 ms',
      'raw p50 / p99 ms',
      'client CPU µs/pair ours : raw',
      'server CPU µs/pair ours : raw',
      'requests/pair ours : raw',
    ],
    summary.map((s) => [
      s.backend,
      s.concurrency,
      s.keys,
      withSpread(s.ours.pairsPerSec),
      withSpread(s.raw.pairsPerSec),
      ratio(s.oursOverRaw),
      `${num(s.ours.p50Ms.median, 2)} / ${num(s.ours.p99Ms.median, 2)}`,
      `${num(s.raw.p50Ms.median, 2)} / ${num(s.raw.p99Ms.median, 2)}`,
      `${num(s.ours.cpuUsPerPair.median)} : ${num(s.raw.cpuUsPerPair.median)}`,
      `${num(s.ours.serverCpuUsPerPair.median)} : ${num(s.raw.serverCpuUsPerPair.median)}`,
      s.requestsPerPair
        ? `${num(s.requestsPerPair.ours?.[s.keys], 1)} : ${num(s.requestsPerPair.raw?.[s.keys], 1)}`
        : '–',
    ]),
  );
}

function notes(counts) {
  const out = [
    'Figures: median over rounds (min–max in parentheses); ours/raw is the median of per-round ratios.',
    'Client CPU: CPU time of the measuring process per pair (user + system); for memory it includes the ' +
      'in-process store. Server CPU: CPU time of the server process (Consul test server, dynalite, etcd, redis-server) per pair. ' +
      'CPU time moves far less with machine load than wall time does.',
    '"new" keys: a fresh key per pair (the worker locks each task once); "same": one key per lane, reused.',
  ];
  for (const [backend, c] of Object.entries(counts)) {
    if (backend === 'memory') continue;
    const ops = (r) =>
      Object.entries(r ?? {})
        .map(([op, n]) => `${num(n, 1)}× ${op}`)
        .join(' + ');
    out.push(
      `${backend}: requests per pair, counted ${backend === 'postgres' ? 'at the client (pg query calls)' : 'at the server'} (untimed): new keys: ours ${ops(c.ours.byOp.new)}; ` +
        `raw ${ops(c.raw.byOp.new)}. Reused key: ours ${ops(c.ours.byOp.same)}; raw ${ops(c.raw.byOp.same)}.`,
    );
  }
  return out;
}
