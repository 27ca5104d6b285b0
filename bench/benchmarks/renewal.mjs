// renewal: requests per second one session sends just to keep 1, 100 and 1,000 leases alive.

import { CONSUL_COUNTING_OPTIONS, openOurs, serverKind } from '../lib/locks.mjs';
import { startServer } from '../lib/servers.mjs';
import { markdownTable, num } from '../lib/table.mjs';

export default {
  name: 'renewal',
  title: 'Renewal traffic: requests per second while holding leases',
  description:
    'One session acquires N leases (new keys) and holds them. After a warm-up (Consul: longer than the TTL, so ' +
    'that every background activity a held lease starts has started; DynamoDB: one heartbeat), the server ' +
    'counts every request the session sends during a window of several renewal periods; nothing else talks to ' +
    'the server. Consul: counted by the test server per endpoint. DynamoDB: counted per operation by a ' +
    'pass-through in front of dynalite.',
  async run(ctx) {
    const p = ctx.quick
      ? { leases: [5], backends: ['consul', 'dynamodb'] }
      : { leases: [1, 100, 1_000], backends: ['consul', 'dynamodb'] };
    p.backends = ctx.backends(p.backends);
    // Consul: a short TTL keeps the run short (renewals are per session, at TTL/2); a lease held longer than
    // the TTL gets a blocking query on its key, re-issued every watchWaitMs (60 s by default, 2 × TTL here so
    // that the window sees them). Warm-up TTL + 1 s: every monitor has started; window: two waits. DynamoDB:
    // the heartbeat renews each lease every TTL/3 from the start; a 12 s lease (default 20 s) gives a 4 s
    // heartbeat, the window is three heartbeats so that a round cut by the window's edges weighs little.
    // Requests per lease per period do not depend on the periods chosen.
    p.settings = ctx.quick
      ? {
          consul: { ttlMs: 500, watchWaitMs: 1_000, warmupMs: 1_000, windowMs: 1_000 },
          dynamodb: { ttlMs: 1_500, warmupMs: 750, windowMs: 1_000 },
        }
      : {
          consul: { ttlMs: 2_000, watchWaitMs: 4_000, warmupMs: 3_000, windowMs: 8_000 },
          dynamodb: { ttlMs: 12_000, warmupMs: 4_500, windowMs: 12_000 },
        };
    const rounds = [];
    for (const backend of p.backends) {
      const kind = serverKind(backend);
      for (const leases of p.leases) {
        const server = await startServer(
          kind,
          kind === 'consul' ? CONSUL_COUNTING_OPTIONS : { countRequests: true },
        );
        try {
          const row = await measure(p, backend, server, leases);
          ctx.log(`${backend} ${leases} lease(s): ${num(row.requestsPerSec, 1)} req/s`);
          rounds.push(row);
        } finally {
          await server.close();
        }
      }
    }
    const summary = rounds.map((r) => {
      const settings = p.settings[r.backend];
      const atDefaults = Object.entries(r.perSecByOp).reduce(
        (sum, [op, perSec]) => sum + perSec * (periodOf(op, settings) / periodOf(op, DEFAULTS[r.backend])),
        0,
      );
      return {
        backend: r.backend,
        leases: r.leases,
        timers:
          r.backend === 'consul'
            ? `TTL ${num(settings.ttlMs / 1000, 1)} s, wait ${num(settings.watchWaitMs / 1000, 1)} s`
            : `lease ${num(settings.ttlMs / 1000, 1)} s`,
        requestsPerSec: r.requestsPerSec,
        byOperation: r.perSecByOp,
        atDefaults,
        leasesLost: r.leasesLost,
      };
    });
    return {
      parameters: { ...p, defaults: DEFAULTS },
      rounds,
      summary,
      table: markdownTable(
        [
          'backend',
          'leases',
          'timers here',
          'requests/s',
          'by operation (req/s)',
          'req/s at default timers',
          'leases lost',
        ],
        summary.map((s) => [
          s.backend,
          num(s.leases),
          s.timers,
          num(s.requestsPerSec, 1),
          Object.entries(s.byOperation)
            .sort((a, b) => b[1] - a[1])
            .map(([op, n]) => `${op} ${num(n, 1)}`)
            .join(', '),
          num(s.atDefaults, 1),
          num(s.leasesLost),
        ]),
      ),
      notes: [
        `Consul: window ${num(p.settings.consul?.windowMs / 1000)} s after a ${num(p.settings.consul?.warmupMs / 1000)} s warm-up; ` +
          `DynamoDB: heartbeat every lease/3, window ${num(p.settings.dynamodb?.windowMs / 1000)} s after ${num(p.settings.dynamodb?.warmupMs / 1000, 1)} s. ` +
          'One round per cell: the counts follow timers, not machine load.',
        'Default timers: Consul TTL 15 s (session renewed every TTL/2), blocking-query wait 60 s (a held lease older ' +
          'than the TTL is watched with one blocking GET per wait); DynamoDB lease 20 s (each held lease rewritten every ' +
          'lease/3). "req/s at default timers" rescales each measured operation by its own period (renew: TTL; ' +
          'GET /v1/kv: the wait; UpdateItem: the lease).',
      ],
    };
  },
};

/** Timer settings of the backends' defaults (the renewal periods scale with these). */
const DEFAULTS = { consul: { ttlMs: 15_000, watchWaitMs: 60_000 }, dynamodb: { ttlMs: 20_000 } };

/** The period that drives an operation's rate. */
function periodOf(op, settings) {
  if (op.startsWith('GET /v1/kv')) return settings.watchWaitMs;
  return settings.ttlMs;
}

async function measure(p, backend, server, leases) {
  const { warmupMs, windowMs, ...settings } = p.settings[backend];
  const { ttlMs } = settings;
  const ours = await openOurs(backend, server, { ...settings, lockDelayMs: 0 });
  try {
    const held = [];
    const batch = 16;
    for (let i = 0; i < leases; i += batch) {
      const part = await Promise.all(
        Array.from({ length: Math.min(batch, leases - i) }, (_, j) => ours.acquire(`renewal/${i + j}`)),
      );
      if (part.some((l) => !l)) throw new Error(`${backend}: a renewal key was unexpectedly held`);
      held.push(...part);
    }
    await new Promise((resolve) => setTimeout(resolve, warmupMs));
    await server.reset();
    const started = performance.now();
    await new Promise((resolve) => setTimeout(resolve, windowMs));
    const byOp = await server.patterns();
    const seconds = (performance.now() - started) / 1000;
    const total = Object.values(byOp).reduce((a, b) => a + b, 0);
    const leasesLost = held.filter((l) => l.signal.aborted).length;
    return {
      backend,
      leases,
      ttlMs,
      windowMs: seconds * 1000,
      requests: total,
      requestsPerSec: total / seconds,
      byOp,
      perSecByOp: Object.fromEntries(Object.entries(byOp).map(([op, n]) => [op, n / seconds])),
      leasesLost,
    };
  } finally {
    await ours.close();
  }
}
