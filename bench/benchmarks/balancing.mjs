// balancing: bucket-mode job-server processes start one after another on a shared PostgreSQL task table, then
// some are SIGKILLed and some SIGTERMed, while tasks are enqueued at a steady rate. After each event: the time
// until the buckets are spread evenly again (seen at the lock backend), the buckets that changed hands against
// the fewest any rule must move, and tasks/s through it; at the end the task table must show every task done
// once.

import { spawnChild, stopChild } from '../lib/child.mjs';
import { CONSUL_SERVER_OPTIONS, createProvider, serverKind } from '../lib/locks.mjs';
import { importWorkspace } from '../lib/packages.mjs';
import { dropSchemas, schemaName } from '../lib/postgres.mjs';
import { startServer } from '../lib/servers.mjs';
import { markdownTable, num } from '../lib/table.mjs';
import { batonTaskSummary, connect } from '../lib/tasks.mjs';

export default {
  name: 'balancing',
  title: 'Balancing: bucket spread after joins, crashes and stops (8 processes)',
  description:
    'Job-server processes (one bucket-mode Worker each, real OS processes) join one after another on one ' +
    'PostgreSQL task table with 64 buckets while a steady stream of tasks is enqueued; then two are SIGKILLed ' +
    'and two SIGTERMed, one at a time. The parent lists the bucket keys at the lock backend every 100 ms. Per ' +
    'event: time until every bucket is held by a live process and live processes hold max − min ≤ 1 buckets, ' +
    'buckets that changed holder against the fewest needed, tasks done per second from the event to the even ' +
    'spread. At the end: every enqueued task done, none lost, and how many ran twice (only tasks in flight in ' +
    'a killed process may).',
  async run(ctx) {
    const p = ctx.quick
      ? {
          backends: ['consul'],
          processes: 3,
          kills: 1,
          stops: 1,
          buckets: 8,
          ratePerSec: 50,
          settleMs: 300,
          ttlMs: 1_000,
          lockDelayMs: 200,
          balanceIntervalMs: 400,
        }
      : {
          backends: ['consul', 'dynamodb'],
          processes: 8,
          kills: 2,
          stops: 2,
          buckets: 64,
          ratePerSec: 200,
          settleMs: 2_000,
          ttlMs: 4_000,
          lockDelayMs: 1_000,
          balanceIntervalMs: 1_000,
        };
    p.backends = ctx.backends(p.backends);
    Object.assign(p, {
      concurrency: 4,
      taskMs: 5,
      everyMs: 250,
      pollMs: 100,
      eventTimeoutMs: 60_000,
    });
    const { url } = await ctx.postgres();
    const results = [];
    for (const backend of p.backends) {
      const kind = serverKind(backend);
      const server = await startServer(kind, kind === 'consul' ? CONSUL_SERVER_OPTIONS : {});
      try {
        results.push(await runBackend(ctx, p, url, backend, server));
      } finally {
        await server.close();
      }
    }
    const rows = results.flatMap((r) =>
      r.events.map((e) => [
        r.backend,
        e.event,
        num(e.live),
        Number.isFinite(e.evenMs) ? num(e.evenMs / 1000, 2) : 'not even',
        Number.isFinite(e.freedMs) ? num(e.freedMs / 1000, 2) : '',
        e.expected,
        `${e.spread.max}/${e.spread.min}`,
        num(e.moved),
        num(e.minimum),
        `${e.leasesLost} / ${e.sessionsLost}`,
        num(e.tasksPerSec, 0),
      ]),
    );
    const checks = results.map((r) => [
      r.backend,
      num(r.check.enqueued),
      num(r.check.done),
      num(r.check.lost),
      num(r.check.startedTwice),
      num(r.check.startedTwiceNotKilled),
      num(r.check.maxAttempts),
    ]);
    return {
      parameters: p,
      rounds: results.flatMap((r) => r.events.map((e) => ({ backend: r.backend, ...e }))),
      summary: results.map((r) => ({ backend: r.backend, ...r.check })),
      table: [
        markdownTable(
          [
            'backend',
            'event',
            'live',
            'to even spread s',
            'its buckets freed s',
            'expected s',
            'max/min buckets',
            'buckets moved',
            'minimum',
            'leases / sessions lost',
            'tasks/s',
          ],
          rows,
        ),
        '',
        markdownTable(
          [
            'backend',
            'tasks enqueued',
            'done',
            'lost',
            'ran twice',
            'ran twice, not after a kill',
            'max attempts',
          ],
          checks,
        ),
      ].join('\n'),
      notes: [
        `${p.processes} processes, one Worker each (concurrency ${p.concurrency}, ${p.taskMs} ms no-op tasks), ${p.buckets} buckets, ` +
          `balanceIntervalMs ${p.balanceIntervalMs}, TTL ${p.ttlMs / 1000} s, lock-delay ${p.lockDelayMs / 1000} s; ${p.ratePerSec} tasks/s ` +
          `enqueued throughout; a process joins once the spread is even and has stayed so for ${p.settleMs} ms. ` +
          `Times from the event (a joiner: its 'started' message; a kill or stop: the signal) to the first of the ` +
          `parent’s ${p.pollMs} ms list() polls that shows the even spread; buckets moved = holder changes those polls ` +
          'saw (a bucket handed over and back between two polls counts once or not at all). tasks/s = tasks done ' +
          'in the database from the event to the even spread, divided by that time (short windows are noisy). ' +
          'leases / sessions lost: bucket leases and lock sessions the live processes reported lost (expired under ' +
          'them: a renewal or heartbeat that did not get through in time) during the event, from their progress reports. ' +
          'its buckets freed: from the signal until the polls first showed the victim holding no bucket (released at a ' +
          'stop; expired, or taken after expiry, at a kill).',
        'Expected: a join within a few balancing rounds (the joiner waits min(500 ms, interval/4), the others hand ' +
          'back in their next round, the joiner takes at 4× the pace while below its share); a SIGTERM within ' +
          'about one round (its buckets are released at once). A SIGKILL waits for expiry at the lock server: ' +
          'Consul frees a dead session’s keys 1.5–2× TTL after the kill (last renewal ≤ TTL/2 before; the server ' +
          'timer is 2× TTL), DynamoDB once a contender saw the same record version for TTL + 10%; then the ' +
          'lock-delay, then up to a round.',
        'ran twice = tasks whose handler was entered twice (from the processes’ own reports). Only tasks running in ' +
          'a SIGKILLed process may: their outcome was never written, so the next holder runs them again; ' +
          'the fenced writes keep exactly one outcome. The machine was shared with other work: times are noisy.',
      ],
    };
  },
};

async function runBackend(ctx, p, url, backend, server) {
  const schema = schemaName(`balance_${backend}`);
  const { createPostgresTaskSource } = await importWorkspace('@baton/source-postgres', [
    'createPostgresTaskSource',
  ]);
  const source = await createPostgresTaskSource({ connectionString: url, schema, poolSize: 2 });
  await source.migrate?.();
  const client = await connect(url);
  const observer = await createProvider(backend, server, {
    ttlMs: p.ttlMs,
    lockDelayMs: p.lockDelayMs,
  });
  const root = `buckets/${source.namespace}/${p.buckets}/`;
  const children = [];
  const starts = new Map(); // task id → processes whose handler entered it
  let enqueued = 0;
  let enqueueError;
  let enqueuing = true;
  const enqueueLoop = (async () => {
    const tickMs = 50;
    const perTick = Math.max(1, Math.round((p.ratePerSec * tickMs) / 1000));
    const t0 = performance.now();
    while (enqueuing) {
      try {
        await source.enqueue(Array.from({ length: perTick }, () => ({ kind: 'noop', payload: {} })));
        enqueued += perTick;
      } catch (error) {
        enqueueError = error;
      }
      const next = t0 + (enqueued / p.ratePerSec) * 1000;
      await sleep(Math.max(0, next - performance.now()));
    }
  })();

  const alive = () => children.filter((c) => c.state === 'live');
  const spawn = (i) => {
    const child = spawnChild('baton-worker.mjs', {
      backend,
      serverUrl: server.url,
      url,
      schema,
      idPrefix: `p${i}`,
      leaseBy: 'bucket',
      buckets: { count: p.buckets, balanceIntervalMs: p.balanceIntervalMs },
      concurrency: p.concurrency,
      sleepMs: p.taskMs,
      everyMs: p.everyMs,
      ttlMs: p.ttlMs,
      lockDelayMs: p.lockDelayMs,
      stopGraceMs: 5_000,
      poolSize: 3,
      reportStarts: true,
      progressEveryMs: 250,
    });
    const entry = { i, child, state: 'starting', id: undefined, killed: false, stats: {} };
    children.push(entry);
    return entry;
  };
  const collectStarts = () => {
    for (const c of children) {
      for (;;) {
        const msg = c.child.poll('progress');
        if (!msg) break;
        c.stats = msg.stats;
      }
      for (;;) {
        const msg = c.child.poll('task-started');
        if (!msg) break;
        const list = starts.get(msg.taskId) ?? [];
        list.push(c.i);
        starts.set(msg.taskId, list);
      }
    }
  };

  // Ownership as the lock backend shows it.
  let lastHolder = new Map(); // bucket → session id
  let moves = 0;
  const observe = async () => {
    const holders = await observer.list(root);
    const memberOfSession = new Map();
    const bucketHolder = new Map();
    for (const h of holders) {
      const rest = h.key.slice(root.length);
      if (rest.startsWith('m/')) memberOfSession.set(h.sessionId, rest.slice(2));
      else if (rest.startsWith('b/')) bucketHolder.set(Number(rest.slice(2)), h.sessionId);
    }
    for (const [bucket, session] of bucketHolder) {
      const before = lastHolder.get(bucket);
      if (before !== session) moves++;
    }
    lastHolder = new Map([...lastHolder, ...bucketHolder]);
    const held = new Map();
    for (const session of bucketHolder.values()) {
      const id = memberOfSession.get(session) ?? `session:${session}`;
      held.set(id, (held.get(id) ?? 0) + 1);
    }
    const live = alive();
    const counts = live.map((c) => held.get(c.id) ?? 0);
    const total = counts.reduce((a, b) => a + b, 0);
    const max = Math.max(...counts);
    const min = Math.min(...counts);
    return { even: live.length > 0 && total === p.buckets && max - min <= 1, max, min, held };
  };
  const doneCount = async () => {
    const { rows } = await client.query(
      `select count(*)::int as n from "${schema}".tasks where status = 'done'`,
    );
    return rows[0].n;
  };

  /** Waits for an even spread; returns the event's row. */
  // Bucket leases and sessions the processes reported lost (expired under them), as of their last progress.
  const losses = () => {
    collectStarts();
    let buckets = 0;
    let sessions = 0;
    for (const c of children) {
      buckets += c.stats.bucketsLost ?? 0;
      sessions += c.stats.sessionsLost ?? 0;
    }
    return { buckets, sessions };
  };
  const measure = async (event, since, minimum, expected, victimId) => {
    const moves0 = moves;
    const losses0 = losses();
    const done0 = await doneCount();
    const deadline = since + p.eventTimeoutMs;
    let state;
    let evenAt = Number.NaN;
    // When the lock backend first showed none of the victim's buckets held by it any more.
    let freedAt = Number.NaN;
    while (performance.now() < deadline) {
      await sleep(p.pollMs);
      collectStarts();
      state = await observe();
      if (victimId && Number.isNaN(freedAt) && !(state.held.get(victimId) > 0)) freedAt = performance.now();
      if (state.even) {
        evenAt = performance.now();
        break;
      }
    }
    const elapsed = (Number.isFinite(evenAt) ? evenAt : performance.now()) - since;
    const done1 = await doneCount();
    const row = {
      event,
      live: alive().length,
      evenMs: Number.isFinite(evenAt) ? evenAt - since : Number.NaN,
      freedMs: freedAt - since,
      expected,
      spread: { max: state?.max, min: state?.min },
      moved: moves - moves0,
      minimum,
      leasesLost: losses().buckets - losses0.buckets,
      sessionsLost: losses().sessions - losses0.sessions,
      tasksPerSec: ((done1 - done0) / elapsed) * 1000,
    };
    ctx.log(
      `${backend} ${event}: ${Number.isFinite(row.evenMs) ? `even after ${num(row.evenMs / 1000, 2)} s` : 'NOT even'}` +
        `, ${row.moved} moved (min ${minimum}), ${num(row.tasksPerSec)} tasks/s, ` +
        `${row.leasesLost} bucket leases and ${row.sessionsLost} sessions lost`,
    );
    // Stay even for a while before the next event (and keep the moves of late hand-overs in this event).
    const settleUntil = performance.now() + p.settleMs;
    while (performance.now() < settleUntil) {
      await sleep(p.pollMs);
      collectStarts();
      await observe();
    }
    row.movedAfterSettle = moves - moves0;
    return row;
  };

  const r = p.balanceIntervalMs;
  const s = (ms) => num(ms / 1000, 1);
  const killWindow =
    backend === 'consul'
      ? [1.5 * p.ttlMs + p.lockDelayMs, 2 * p.ttlMs + p.lockDelayMs + r]
      : [
          p.ttlMs + p.ttlMs / 10 + p.lockDelayMs,
          p.ttlMs + p.ttlMs / 10 + p.lockDelayMs + p.ttlMs / 3 + r + 2 * p.pollMs,
        ];
  const events = [];
  try {
    for (let i = 0; i < p.processes; i++) {
      const entry = spawn(i);
      const ready = await entry.child.next('ready', 30_000);
      entry.id = `p${i}-${ready.pid}-0`;
      const startedMsg = entry.child.next('started', 30_000);
      entry.child.send({ type: 'go' });
      await startedMsg;
      const since = performance.now();
      entry.state = 'live';
      const n = alive().length;
      const minimum = n === 1 ? p.buckets : Math.floor(p.buckets / n);
      events.push(
        await measure(`process ${i + 1} joins`, since, minimum, `≤ ${s(0.5 + 3 * r)} (a few rounds)`),
      );
    }
    for (const [signal, count] of [
      ['SIGKILL', p.kills],
      ['SIGTERM', p.stops],
    ]) {
      for (let k = 0; k < count; k++) {
        const victim = alive()[0];
        const before = await observe();
        const minimum = before.held.get(victim.id) ?? 0;
        victim.state = signal === 'SIGKILL' ? 'killed' : 'stopped';
        victim.killed = signal === 'SIGKILL';
        const since = performance.now();
        victim.child.kill(signal);
        const expected =
          signal === 'SIGKILL'
            ? `${s(killWindow[0])}–${s(killWindow[1])} (expiry + lock-delay + a round)`
            : `≤ ${s(2 * r)} (released at once)`;
        events.push(await measure(`${signal} process ${victim.i + 1}`, since, minimum, expected, victim.id));
      }
    }
    // Stop enqueuing, let the survivors drain, then check the task table.
    enqueuing = false;
    await enqueueLoop;
    const drainUntil = performance.now() + 60_000;
    while (performance.now() < drainUntil) {
      collectStarts();
      if ((await doneCount()) >= enqueued) break;
      await sleep(200);
    }
    for (const c of alive()) await stopChild(c.child).catch(() => undefined);
    collectStarts();
    const summary = await batonTaskSummary(client, schema);
    const killedIds = new Set(children.filter((c) => c.killed).map((c) => c.i));
    let startedTwice = 0;
    let startedTwiceNotKilled = 0;
    for (const list of starts.values()) {
      if (list.length < 2) continue;
      startedTwice++;
      if (!list.slice(0, -1).every((i) => killedIds.has(i))) startedTwiceNotKilled++;
    }
    const done = summary.byStatus.done ?? 0;
    return {
      backend,
      events,
      check: {
        enqueued,
        done,
        lost: enqueued - done,
        byStatus: summary.byStatus,
        startedTwice,
        startedTwiceNotKilled,
        maxAttempts: summary.maxAttempts,
        enqueueError: enqueueError ? String(enqueueError) : undefined,
      },
    };
  } finally {
    enqueuing = false;
    await enqueueLoop.catch(() => undefined);
    for (const c of children) c.child.kill('SIGKILL');
    await Promise.all(children.map((c) => c.child.exited));
    await observer.close?.();
    await source.close();
    await client.end();
    await dropSchemas(url, [schema]);
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
