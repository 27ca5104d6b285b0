// takeover: a worker process holding leases dies (SIGKILL) or is stopped (SIGTERM); how long until its
// tasks are completed by another worker process, next to the configured TTL and lock-delay.

import { spawnChild, stopChild } from '../lib/child.mjs';
import { CONSUL_SERVER_OPTIONS, serverKind } from '../lib/locks.mjs';
import { dropSchemas, schemaName } from '../lib/postgres.mjs';
import { startServer } from '../lib/servers.mjs';
import { spread } from '../lib/stats.mjs';
import { markdownTable, num, withSpread } from '../lib/table.mjs';
import { batonRemaining, connect, prepareTasks, waitUntilDone } from '../lib/tasks.mjs';

export default {
  name: 'takeover',
  title: 'Takeover: time until a lost worker’s tasks complete elsewhere',
  description:
    'Process A (one Worker, 4 handlers that wait until aborted) claims all 4 tasks of a batch; process B ' +
    '(no-op handler) is polling. Then A is SIGKILLed (its leases must expire at the lock server) or ' +
    'SIGTERMed (graceful stop: handlers aborted after the stop grace, failures written fenced, leases ' +
    'released). Measured from the signal until the database shows all 4 tasks done by B. Consul: the ' +
    'server frees a dead session’s locks within TTL…2×TTL after its last renewal, then applies the ' +
    'lock-delay. DynamoDB: B may take a lease only after seeing the same record version for the lease ' +
    'duration + 10% margin + lock-delay on its own clock.',
  async run(ctx) {
    const p = ctx.quick
      ? { backends: ['consul'], modes: ['SIGKILL', 'SIGTERM'], rounds: 1 }
      : { backends: ['consul', 'dynamodb'], modes: ['SIGKILL', 'SIGTERM'], rounds: 2 };
    p.backends = ctx.backends(p.backends);
    p.tasks = 4;
    p.ttlMs = ctx.quick ? 600 : 2_000;
    p.lockDelayMs = ctx.quick ? 200 : 1_000;
    p.everyMs = ctx.quick ? 100 : 250;
    p.stopGraceMs = ctx.quick ? 100 : 200;
    p.reclaimAfterMs = ctx.quick ? 200 : 500;
    p.backoffBaseMs = 100;
    const { url } = await ctx.postgres();
    const client = await connect(url);
    const rounds = [];
    const summary = [];
    try {
      for (const backend of p.backends) {
        const kind = serverKind(backend);
        const server = await startServer(kind, kind === 'consul' ? CONSUL_SERVER_OPTIONS : {});
        try {
          for (const mode of p.modes) {
            const times = [];
            for (let round = 0; round < p.rounds; round++) {
              const row = await runOnce(p, url, client, backend, server.url, mode);
              ctx.log(`${backend} ${mode} round ${round + 1}: ${(row.takeoverMs / 1000).toFixed(2)} s`);
              rounds.push({ backend, mode, round, ...row });
              times.push(row.takeoverMs);
            }
            summary.push({ backend, mode, takeoverMs: spread(times), bound: expected(backend, mode, p) });
          }
        } finally {
          await server.close();
        }
      }
    } finally {
      await client.end();
    }
    return {
      parameters: p,
      rounds,
      summary,
      table: markdownTable(
        ['backend', 'stop', 'TTL', 'lock-delay', 'takeover s', 'expected window s'],
        summary.map((s) => [
          s.backend,
          s.mode,
          `${num(p.ttlMs / 1000, 1)} s`,
          `${num(p.lockDelayMs / 1000, 1)} s`,
          withSpread(
            {
              ...s.takeoverMs,
              median: s.takeoverMs.median / 1000,
              min: s.takeoverMs.min / 1000,
              max: s.takeoverMs.max / 1000,
            },
            2,
          ),
          `${num(s.bound.min / 1000, 2)}–${num(s.bound.max / 1000, 2)}`,
        ]),
      ),
      notes: [
        `Median of ${p.rounds} rounds (min–max). Worker B polls every ${p.everyMs} ms; a running task becomes due again ` +
          `after ${p.reclaimAfterMs} ms (reclaimAfterMs); A’s stop grace is ${p.stopGraceMs} ms; a failed attempt is retried after ${p.backoffBaseMs} ms.`,
        'Expected window (SIGKILL): Consul 1.5×TTL…2×TTL (last renewal at most TTL/2 before the kill; the server ' +
          'timer is 2×TTL) + lock-delay; DynamoDB TTL×2/3…TTL (last heartbeat at most TTL/3 before) + 10% margin + ' +
          'lock-delay; both + up to one poll interval and the claim and complete writes. SIGTERM: stop grace + ' +
          'fenced fail + release + retry backoff + up to one poll interval; no TTL involved.',
      ],
    };
  },
};

function expected(backend, mode, p) {
  const poll = p.everyMs;
  if (mode === 'SIGTERM') {
    return { min: p.stopGraceMs + p.backoffBaseMs, max: p.stopGraceMs + p.backoffBaseMs * 2 + poll + 200 };
  }
  if (backend === 'consul') {
    return { min: 1.5 * p.ttlMs + p.lockDelayMs, max: 2 * p.ttlMs + p.lockDelayMs + poll + 200 };
  }
  const margin = Math.ceil(p.ttlMs / 10);
  return {
    min: (2 / 3) * p.ttlMs + margin + p.lockDelayMs,
    max: p.ttlMs + margin + p.lockDelayMs + poll + 200,
  };
}

async function runOnce(p, url, client, backend, serverUrl, mode) {
  const schema = schemaName(`takeover_${backend}`);
  const common = {
    backend,
    serverUrl,
    url,
    schema,
    concurrency: p.tasks,
    everyMs: p.everyMs,
    ttlMs: p.ttlMs,
    lockDelayMs: p.lockDelayMs,
    reclaimAfterMs: p.reclaimAfterMs,
    backoffBaseMs: p.backoffBaseMs,
    poolSize: 2,
  };
  const a = spawnChild('baton-worker.mjs', {
    ...common,
    idPrefix: 'A',
    sleepMs: 3_600_000,
    stopGraceMs: p.stopGraceMs,
    reportStarts: true,
  });
  let b;
  try {
    await prepareTasks(url, schema, p.tasks);
    await a.next('ready');
    a.send({ type: 'go' });
    for (let i = 0; i < p.tasks; i++) await a.next('task-started', 30_000);
    b = spawnChild('baton-worker.mjs', { ...common, idPrefix: 'B', sleepMs: 0 });
    await b.next('ready');
    b.send({ type: 'go' });
    await b.next('started');
    // Let B make a pass or two while A still holds everything.
    await new Promise((resolve) => setTimeout(resolve, p.everyMs * 2));
    const since = performance.now();
    a.kill(mode);
    const takeoverMs = await waitUntilDone(() => batonRemaining(client, schema), {
      since,
      everyMs: 20,
      timeoutMs: 60_000,
    });
    if (!Number.isFinite(takeoverMs)) throw new Error(`${backend} ${mode}: tasks not taken over within 60 s`);
    const aExit = await a.exited;
    const stopped = b.next('stopped', 30_000);
    await stopChild(b);
    const { stats } = await stopped;
    return { takeoverMs, aExit, bStats: stats.total, bErrors: stats.errors };
  } finally {
    a.kill('SIGKILL');
    b?.kill('SIGKILL');
    await dropSchemas(url, [schema]);
  }
}
