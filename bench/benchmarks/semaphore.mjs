// semaphore: core's semaphore() under contention (16 contenders, limit 4) per backend, and redis-semaphore on
// the same redis-server.

import { randomUUID } from 'node:crypto';
import { lockDatabase } from '../lib/lock-backends.mjs';
import { CONSUL_SERVER_OPTIONS, createProvider, serverKind } from '../lib/locks.mjs';
import { interleave } from '../lib/loop.mjs';
import { importWorkspace, UnavailableError } from '../lib/packages.mjs';
import { startServer } from '../lib/servers.mjs';
import { latencySummary, pairedRatio, spread } from '../lib/stats.mjs';
import { markdownTable, num, ratio, withSpread } from '../lib/table.mjs';

const PEER = 'redis-semaphore';
/** redis-semaphore's documented defaults, except `acquireTimeout` (long enough never to fire here). */
const PEER_OPTIONS = { lockTimeout: 10_000, acquireTimeout: 60_000, retryInterval: 10 };

export default {
  name: 'semaphore',
  title: 'Semaphore under contention: 16 contenders, limit 4',
  description:
    'In one process, 16 contenders loop for a fixed time: blocking acquire of a permit of one semaphore of ' +
    'limit 4 → hold (0 ms: one turn of the event loop; and 2 ms) → release. Ours: core `semaphore(provider, name, { limit: 4 })`, ' +
    'one lock session per contender, `acquire(session)` (waits on the backend’s watch, or polls on ' +
    'DynamoDB); per backend. Peer: redis-semaphore 5.8 `Semaphore` (sorted set + Lua, polling every ' +
    '`retryInterval`), one instance per contender, on the same redis-server as our Redis backend, rounds ' +
    'interleaved with ours. Wait = time from calling acquire to holding the permit. Fairness = max wait / ' +
    'mean wait over the round. The benchmark counts holders itself (incremented after acquire resolves, ' +
    'decremented before release is sent) and fails if it ever sees more than 4.',
  async run(ctx) {
    const all = ['memory', 'consul', 'dynamodb', 'etcd', 'postgres', 'redis'];
    const p = ctx.quick
      ? { backends: all, contenders: 16, limit: 4, holdMs: [0], rounds: 1, roundMs: 300, warmupMs: 50 }
      : { backends: all, contenders: 16, limit: 4, holdMs: [0, 2], rounds: 3, roundMs: 1_500, warmupMs: 200 };
    p.backends = ctx.backends(p.backends);
    p.peer = PEER_OPTIONS;
    await dropMissing(ctx, p);
    const rounds = [];
    const summary = [];
    for (const backend of p.backends) {
      const kind = serverKind(backend);
      const server =
        backend === 'postgres'
          ? await lockDatabase(ctx)
          : kind
            ? await startServer(kind, kind === 'consul' ? CONSUL_SERVER_OPTIONS : {})
            : undefined;
      const contestants = { ours: await openOurs(backend, server, p) };
      try {
        if (backend === 'redis') contestants[PEER] = await openPeer(server.url, p);
        const names = Object.keys(contestants);
        for (const holdMs of p.holdMs) {
          ctx.log(`${backend} hold=${holdMs} ms`);
          const by = await interleave(names, p.rounds, async (who, round) => {
            const r = await contend(contestants[who], p, holdMs);
            const row = { backend, holdMs, contestant: who, round, ...r };
            rounds.push(row);
            return row;
          });
          for (const who of names) summary.push(summarise(backend, holdMs, who, by, names));
        }
      } finally {
        for (const c of Object.values(contestants)) await c.close();
        await server?.close();
        await server?.drop?.();
      }
    }
    return { parameters: p, rounds, summary, table: table(summary), notes: notes(p) };
  },
};

/** Drops etcd / redis / postgres from `p.backends` when they cannot run here, saying why. */
async function dropMissing(ctx, p) {
  for (const [backend, module, find, hint] of [
    ['etcd', '@baton/test-servers/etcd', 'findEtcd', 'ETCD_INSTALL_HINT'],
    ['redis', '@baton/test-servers/redis', 'findRedis', 'REDIS_INSTALL_HINT'],
  ]) {
    if (!p.backends.includes(backend)) continue;
    const m = await importWorkspace(module, [find, hint]);
    if (m[find]()) continue;
    ctx.log(`${backend} skipped: no binary (${m[hint]})`);
    p.backends = p.backends.filter((b) => b !== backend);
  }
  if (p.backends.includes('postgres')) {
    try {
      await ctx.postgres();
    } catch (error) {
      if (!(error instanceof UnavailableError)) throw error;
      ctx.log(`postgres skipped: ${error.message}`);
      p.backends = p.backends.filter((b) => b !== 'postgres');
    }
  }
}

/** Ours: one provider, one session per contender, one semaphore name per round. */
async function openOurs(backend, server, p) {
  const core = await importWorkspace('@baton/core', ['semaphore']);
  const provider = await createProvider(backend, server);
  const sessions = [];
  for (let i = 0; i < p.contenders; i++) sessions.push(await provider.openSession());
  return {
    open(name) {
      const sem = core.semaphore(provider, name, { limit: p.limit });
      return sessions.map((session) => ({
        acquire: () => sem.acquire(session, { timeoutMs: 60_000 }),
        release: (permit) => permit.release(),
      }));
    },
    async close() {
      for (const s of sessions) await s.destroy().catch(() => {});
      await provider.close();
    },
  };
}

/** redis-semaphore: one ioredis client, one `Semaphore` instance per contender (its permit identity). */
async function openPeer(url, p) {
  const { Redis } = await import('ioredis');
  const { Semaphore } = await import('redis-semaphore');
  const client = new Redis(url);
  return {
    open(name) {
      return Array.from({ length: p.contenders }, () => {
        const sem = new Semaphore(client, name, p.limit, p.peer);
        return { acquire: () => sem.acquire(), release: () => sem.release() };
      });
    },
    async close() {
      client.disconnect();
    },
  };
}

/**
 * One round: warm-up, then every contender loops acquire → hold → release until the time is up; a contender
 * waiting at the deadline finishes its pair (every holder releases, so all drain) but only pairs completed
 * before the deadline count. Throws if more than `limit` holders are ever counted at once.
 */
async function contend(contestant, p, holdMs) {
  const lanes = contestant.open(`bench/sem/${randomUUID().slice(0, 8)}`);
  let holders = 0;
  let maxHolders = 0;
  const loop = async (lane, until, out) => {
    while (performance.now() < until) {
      const t0 = performance.now();
      const permit = await lane.acquire();
      const waited = performance.now() - t0;
      holders++;
      maxHolders = Math.max(maxHolders, holders);
      if (holders > p.limit) throw new Error(`${holders} holders of a semaphore of limit ${p.limit}`);
      // Hold 0 still yields once, so other contenders' acquisitions can overlap this one and be counted.
      await new Promise((r) => (holdMs > 0 ? setTimeout(r, holdMs) : setImmediate(r)));
      holders--;
      await lane.release(permit);
      if (!out) continue;
      out.waits.push(waited);
      if (performance.now() <= until) out.pairs[lanes.indexOf(lane)]++;
    }
  };
  const warmUntil = performance.now() + p.warmupMs;
  await Promise.all(lanes.map((lane) => loop(lane, warmUntil)));
  const out = { waits: [], pairs: lanes.map(() => 0) };
  const started = performance.now();
  await Promise.all(lanes.map((lane) => loop(lane, started + p.roundMs, out)));
  const pairs = out.pairs.reduce((a, b) => a + b, 0);
  const wait = latencySummary(out.waits);
  const mean = out.waits.reduce((a, b) => a + b, 0) / out.waits.length;
  return {
    pairs,
    pairsPerSec: (pairs / p.roundMs) * 1000,
    waitP50Ms: wait.p50,
    waitP99Ms: wait.p99,
    waitMaxMs: wait.max,
    waitMeanMs: mean,
    fairness: wait.max / mean,
    minLanePairs: Math.min(...out.pairs),
    maxLanePairs: Math.max(...out.pairs),
    maxHolders,
  };
}

function summarise(backend, holdMs, who, by, names) {
  const get = (w, field) => by[w].map((r) => r[field]);
  const row = { backend, holdMs, contestant: who };
  for (const f of ['pairsPerSec', 'waitP50Ms', 'waitP99Ms', 'waitMaxMs', 'fairness', 'minLanePairs']) {
    row[f] = spread(get(who, f));
  }
  row.maxHolders = Math.max(...get(who, 'maxHolders'));
  if (who === 'ours' && names.includes(PEER)) {
    row.oursOverPeer = pairedRatio(get('ours', 'pairsPerSec'), get(PEER, 'pairsPerSec'));
    row.p99PeerOverOurs = pairedRatio(get(PEER, 'waitP99Ms'), get('ours', 'waitP99Ms'));
  }
  return row;
}

function table(summary) {
  return markdownTable(
    [
      'backend',
      'contestant',
      'hold ms',
      'pairs/s',
      'wait p50 / p99 ms',
      'max/mean wait',
      'fewest pairs of one contender',
      'max holders seen',
      'ours/peer pairs/s',
    ],
    summary.map((s) => [
      s.backend,
      s.contestant,
      s.holdMs,
      withSpread(s.pairsPerSec),
      `${num(s.waitP50Ms.median, 1)} / ${num(s.waitP99Ms.median, 1)}`,
      withSpread(s.fairness, 1),
      withSpread(s.minLanePairs),
      s.maxHolders,
      s.oursOverPeer ? ratio(s.oursOverPeer) : '',
    ]),
  );
}

function notes(p) {
  return [
    'Figures: median over rounds (min–max); ratios are medians of per-round ratios (ours and peer run in ' +
      'the same round, order rotating).',
    `redis-semaphore settings: ${JSON.stringify(p.peer)}: its documented defaults (retryInterval 10 ms is ` +
      'its fastest documented polling; it has no watch), acquireTimeout raised so it never fires.',
    'Our providers use the benchmarks’ defaults (session TTL 15 s); on DynamoDB a waiter polls (50 ms ' +
      'doubling up to TTL/4), elsewhere it waits on the backend’s watch of the slots.',
    'Fairness: on memory, Consul and etcd our waiters line up (docs/semaphores.md, "Order of waiters") and ' +
      'are served in arrival order; on DynamoDB, Redis and PostgreSQL whichever waiter tries first after a ' +
      'release wins. Max/mean wait and the fewest pairs of one contender show how uneven service is; FIFO ' +
      'service gives a max/mean wait near 1 and equal pairs per contender.',
  ];
}
