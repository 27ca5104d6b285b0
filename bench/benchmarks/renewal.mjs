// renewal: requests per second one session sends just to keep 1, 100 and 1,000 leases alive.

import { CONSUL_COUNTING_OPTIONS, openOurs, serverKind } from '../lib/locks.mjs';
import { startServer } from '../lib/servers.mjs';
import { markdownTable, num } from '../lib/table.mjs';

export default {
  name: 'renewal',
  title: 'Renewal traffic: requests per second while holding leases',
  description:
    'One session acquires N leases (new keys) and holds them. After a warm-up longer than the TTL (so that ' +
    'every background activity a held lease starts has started), the server counts every request the ' +
    'session sends during a window of several TTLs; nothing else talks to the server. Consul: counted by the ' +
    'test server per endpoint. DynamoDB: counted per operation by a pass-through in front of dynalite.',
  async run(ctx) {
    const p = ctx.quick
      ? { leases: [5], backends: ['consul', 'dynamodb'] }
      : { leases: [1, 100, 1_000], backends: ['consul', 'dynamodb'] };
    p.backends = ctx.backends(p.backends);
    // Consul: a short TTL keeps the run short (renewals are per session, at TTL/2); a lease held longer than
    // the TTL gets a blocking query on its key, re-issued every watchWaitMs (60 s by default, 2 × TTL here so
    // that the window sees them). Warm-up TTL + 1 s: every monitor has started. DynamoDB: the default lease
    // duration (20 s); its heartbeat renews each lease every TTL/3 from the start, so the warm-up is one
    // heartbeat period and so is the window. Requests per lease per TTL do not depend on the TTL chosen.
    p.settings = ctx.quick
      ? {
          consul: { ttlMs: 500, watchWaitMs: 1_000, warmupMs: 1_000, windowMs: 1_000 },
          dynamodb: { ttlMs: 1_500, warmupMs: 750, windowMs: 1_000 },
        }
      : {
          consul: { ttlMs: 2_000, watchWaitMs: 4_000, warmupMs: 3_000, windowMs: 4_000 },
          dynamodb: { ttlMs: 20_000, warmupMs: 7_000, windowMs: 6_667 },
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
    const summary = rounds.map((r) => ({
      backend: r.backend,
      leases: r.leases,
      ttlMs: r.ttlMs,
      requestsPerSec: r.requestsPerSec,
      perLeasePerTtl: (r.requestsPerSec * (r.ttlMs / 1000)) / r.leases,
      byOperation: r.perSecByOp,
      leasesLost: r.leasesLost,
    }));
    return {
      parameters: p,
      rounds,
      summary,
      table: markdownTable(
        [
          'backend',
          'leases',
          'TTL',
          'requests/s',
          'requests per lease per TTL',
          'by operation (req/s)',
          'leases lost',
        ],
        summary.map((s) => [
          s.backend,
          num(s.leases),
          `${num(s.ttlMs / 1000)} s`,
          num(s.requestsPerSec, 1),
          num(s.perLeasePerTtl, 2),
          Object.entries(s.byOperation)
            .sort((a, b) => b[1] - a[1])
            .map(([op, n]) => `${op} ${num(n, 1)}`)
            .join(', '),
          num(s.leasesLost),
        ]),
      ),
      notes: [
        `Consul: TTL ${num(p.settings.consul?.ttlMs / 1000)} s, blocking-query wait ${num(p.settings.consul?.watchWaitMs / 1000)} s, ` +
          `window ${num(p.settings.consul?.windowMs / 1000)} s after ${num(p.settings.consul?.warmupMs / 1000)} s; DynamoDB: lease ` +
          `${num(p.settings.dynamodb?.ttlMs / 1000)} s (heartbeat every TTL/3), window ${num(p.settings.dynamodb?.windowMs / 1000, 1)} s ` +
          `after ${num(p.settings.dynamodb?.warmupMs / 1000, 1)} s. One round per cell: the counts follow timers, not load.`,
        'Requests per lease per TTL scales the figure to any TTL: requests/s at TTL T ≈ leases × that number / T.',
      ],
    };
  },
};

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
