// lock-peers: the DynamoDB backend next to dynamodb-lock-client doing the same acquire+release loop.

import { randomUUID } from 'node:crypto';
import { peerDynamoLock } from '../lib/dynamo.mjs';
import { openOurs, openRaw } from '../lib/locks.mjs';
import { closedLoop, interleave } from '../lib/loop.mjs';
import { startServer } from '../lib/servers.mjs';
import { pairedRatio, spread } from '../lib/stats.mjs';
import { markdownTable, num, ratio, withSpread } from '../lib/table.mjs';

const CONTESTANTS = ['ours', 'peer', 'raw'];

export default {
  name: 'lock-peers',
  title: 'DynamoDB locks: ours vs dynamodb-lock-client',
  description:
    'The same closed acquire+release loop as lock-roundtrip on one dynalite: baton’s DynamoDB backend ' +
    '(tryAcquire + release on one session), dynamodb-lock-client 0.7 in FailOpen mode (fencing tokens, ' +
    'heartbeats; AWS SDK v2 DocumentClient with a keep-alive agent) and, for reference, the raw client ' +
    '(one conditional UpdateItem + one UpdateItem). New key per pair and one reused key per lane; ' +
    'concurrency 1 and 16; rounds interleaved with rotating order.',
  async run(ctx) {
    const p = ctx.quick
      ? { concurrency: [1, 16], keys: ['new', 'same'], rounds: 1, roundMs: 150, warmupMs: 30 }
      : { concurrency: [1, 16], keys: ['new', 'same'], rounds: 4, roundMs: 500, warmupMs: 100 };
    p.peer = { mode: 'FailOpen', leaseDurationMs: 10_000, heartbeatPeriodMs: 3_000, retryCount: 0 };
    p.requestCountPairs = ctx.quick ? 5 : 20;
    const server = await startServer('dynalite');
    const rounds = [];
    const summary = [];
    try {
      const contestants = {
        ours: await openOurs('dynamodb', server),
        peer: await wrapPeer(server.url, p.peer),
        raw: await openRaw('dynamodb', server),
      };
      try {
        for (const concurrency of p.concurrency) {
          for (const keys of p.keys) {
            ctx.log(`c=${concurrency} keys=${keys}`);
            const runId = randomUUID().slice(0, 8);
            const by = await interleave(CONTESTANTS, p.rounds, async (who, round) => {
              const c = contestants[who];
              const r = await closedLoop({
                concurrency,
                durationMs: p.roundMs,
                warmupMs: p.warmupMs,
                op: async (lane, i) => {
                  const key =
                    keys === 'new'
                      ? `lp/${runId}/${who}/${round}/${lane}/${i}`
                      : `lp/${runId}/${who}/${lane}`;
                  const handle = await c.acquire(key);
                  if (!handle) throw new Error(`${who}: ${key} unexpectedly held`);
                  await c.release(key, handle);
                },
                around: { before: () => server.cpuMs(), after: async (b) => (await server.cpuMs()) - b },
              });
              const row = {
                concurrency,
                keys,
                contestant: who,
                round,
                pairs: r.ops,
                elapsedMs: r.elapsedMs,
                pairsPerSec: r.opsPerSec,
                p50Ms: r.latency.p50,
                p99Ms: r.latency.p99,
                cpuUsPerPair: r.cpuUsPerOp,
                serverCpuUsPerPair: (r.around * 1000) / r.ops,
              };
              rounds.push(row);
              return row;
            });
            const get = (who, field) => by[who].map((r) => r[field]);
            summary.push({
              concurrency,
              keys,
              ...Object.fromEntries(
                CONTESTANTS.map((who) => [
                  who,
                  {
                    pairsPerSec: spread(get(who, 'pairsPerSec')),
                    p50Ms: spread(get(who, 'p50Ms')),
                    p99Ms: spread(get(who, 'p99Ms')),
                    cpuUsPerPair: spread(get(who, 'cpuUsPerPair')),
                    serverCpuUsPerPair: spread(get(who, 'serverCpuUsPerPair')),
                  },
                ]),
              ),
              oursOverPeer: pairedRatio(get('ours', 'pairsPerSec'), get('peer', 'pairsPerSec')),
              oursOverRaw: pairedRatio(get('ours', 'pairsPerSec'), get('raw', 'pairsPerSec')),
              peerOverRaw: pairedRatio(get('peer', 'pairsPerSec'), get('raw', 'pairsPerSec')),
            });
          }
        }
      } finally {
        for (const c of Object.values(contestants)) await c.close();
      }
    } finally {
      await server.close();
    }
    const requests = await countRequests(p);
    for (const row of summary)
      row.requestsPerPair = Object.fromEntries(CONTESTANTS.map((w) => [w, requests[w][row.keys]]));
    return {
      parameters: p,
      rounds,
      summary,
      requestsPerPair: requests,
      table: markdownTable(
        [
          'conc.',
          'keys',
          'ours pairs/s',
          'peer pairs/s',
          'raw pairs/s',
          'ours/peer',
          'ours/raw',
          'ours p50 / p99 ms',
          'peer p50 / p99 ms',
          'client CPU µs/pair ours : peer : raw',
          'dynalite CPU µs/pair ours : peer : raw',
          'requests/pair ours : peer : raw',
        ],
        summary.map((s) => [
          s.concurrency,
          s.keys,
          withSpread(s.ours.pairsPerSec),
          withSpread(s.peer.pairsPerSec),
          withSpread(s.raw.pairsPerSec),
          ratio(s.oursOverPeer),
          ratio(s.oursOverRaw),
          `${num(s.ours.p50Ms.median, 1)} / ${num(s.ours.p99Ms.median, 1)}`,
          `${num(s.peer.p50Ms.median, 1)} / ${num(s.peer.p99Ms.median, 1)}`,
          CONTESTANTS.map((w) => num(s[w].cpuUsPerPair.median)).join(' : '),
          CONTESTANTS.map((w) => num(s[w].serverCpuUsPerPair.median)).join(' : '),
          CONTESTANTS.map((w) => num(s.requestsPerPair[w], 1)).join(' : '),
        ]),
      ),
      notes: [
        'Figures: median over rounds (min–max); ratios are medians of per-round ratios.',
        'Requests per pair were counted at a counting pass-through in front of a second dynalite (untimed), ' +
          `by operation: ${Object.entries(requests)
            .map(([w, r]) => `${w} new ${fmtOps(r.byOp.new)}, same ${fmtOps(r.byOp.same)}`)
            .join('; ')}.`,
        'dynamodb-lock-client reads the lock first (GetItem) and, when the item exists, waits for the lease ' +
          'duration recorded in it before its conditional PutItem; a released lock records 1 ms.',
      ],
    };
  },
};

async function wrapPeer(endpoint, options) {
  const peer = await peerDynamoLock(endpoint, 'bench_peer_locks', options);
  return {
    name: 'peer',
    acquire: (key) => peer.acquire(key),
    release: (_key, lock) => peer.release(lock),
    close: async () => peer.close(),
  };
}

function fmtOps(ops) {
  return Object.entries(ops)
    .map(([op, n]) => `${num(n, 1)} ${op}`)
    .join(' + ');
}

/** Requests per pair and per operation for each contestant, at a counting dynalite (not timed). */
async function countRequests(p) {
  const server = await startServer('dynalite', { countRequests: true });
  const out = {};
  try {
    for (const who of CONTESTANTS) {
      const c =
        who === 'ours'
          ? await openOurs('dynamodb', server)
          : who === 'peer'
            ? await wrapPeer(server.url, p.peer)
            : await openRaw('dynamodb', server);
      out[who] = { byOp: {} };
      try {
        for (const keys of ['new', 'same']) {
          const key = (i) => (keys === 'new' ? `count/${who}/${i}` : `count/${who}`);
          const warm = await c.acquire(key(-1));
          await c.release(key(-1), warm);
          await server.reset();
          for (let i = 0; i < p.requestCountPairs; i++) {
            const h = await c.acquire(key(i));
            await c.release(key(i), h);
          }
          out[who][keys] = (await server.total()) / p.requestCountPairs;
          out[who].byOp[keys] = {};
          for (const op of ['GetItem', 'PutItem', 'UpdateItem', 'DeleteItem']) {
            const n = await server.count(op);
            if (n) out[who].byOp[keys][op] = n / p.requestCountPairs;
          }
        }
      } finally {
        await c.close();
      }
    }
  } finally {
    await server.close();
  }
  return out;
}
