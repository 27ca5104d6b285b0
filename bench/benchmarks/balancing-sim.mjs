// balancing-sim: the real bucket-mode Worker of @baton/core (its balancing loop, planBalance, joins, hand-backs)
// with hundreds of workers and thousands of buckets, in virtual time on the memory lock backend. Each worker
// has its own MemoryLockProvider on one shared MemoryLockStore (the "server"), seen through a view that counts
// requests by operation and can cut the worker off (a partition) or kill it (a crash: its clock freezes, its
// requests fail). Time is a SimClock: nothing sleeps, so a 500-worker fleet runs minutes of virtual time in
// seconds.

import { importWorkspace } from '../lib/packages.mjs';
import { SimClock } from '../lib/sim-clock.mjs';
import { markdownTable, num } from '../lib/table.mjs';

const OPS = ['list', 'acquire', 'release', 'renew', 'other'];

export default {
  name: 'balancing-sim',
  title: 'Balancing in virtual time: 500 workers, 4,096 buckets (simulation)',
  description:
    'The bucket-mode Worker of @baton/core, unchanged, run as 500 in-process workers over one memory lock ' +
    'store in virtual time (a SimClock injected as every worker’s and the store’s clock). Events: cold start, ' +
    'joins, graceful leaves, crashes, a 10% partition and its heal. Per event: virtual seconds and balancing ' +
    'rounds until every bucket is held by a live worker and live workers hold max − min ≤ 1 buckets; buckets ' +
    'acquired (moves) against the fewest any rule needs. In steady state: lock requests per second by ' +
    'operation, per worker and for the fleet, and what that costs on Consul and DynamoDB.',
  async run(ctx) {
    const p = ctx.quick
      ? { workers: 60, buckets: 512, joiners: 6, leavers: 6, crashes: 6, steadyMs: 20_000 }
      : { workers: 500, buckets: 4_096, joiners: 50, leavers: 50, crashes: 49, steadyMs: 30_000 };
    Object.assign(p, {
      ttlMs: 15_000,
      lockDelayMs: 15_000,
      balanceIntervalMs: 2_000,
      retryMaxMs: 30_000,
      everyMs: 5_000,
      partitionShare: 0.1,
      sampleEveryMs: 100,
      timeoutMs: 180_000,
    });
    const core = await importWorkspace('@baton/core', [
      'Worker',
      'MemoryLockProvider',
      'MemoryLockStore',
      'MemoryTaskSource',
      'UnavailableError',
    ]);
    const fleet = new Fleet(core, p);
    const started = performance.now();
    const events = [];
    const step = async (name, act, minimum) => {
      const before = fleet.snapshot();
      const need = minimum(before);
      const counts0 = fleet.counts();
      const t0 = fleet.clock.monotonicNow();
      act();
      const converged = await fleet.untilEven(p.timeoutMs);
      const counts = diff(fleet.counts(), counts0);
      const ms = converged - t0;
      const row = {
        event: name,
        live: fleet.live().length,
        virtualMs: ms,
        rounds: counts.list / Math.max(1, fleet.live().length),
        moved: counts.bucketAcquired,
        acquireRequests: counts.acquire,
        minimum: need,
        released: counts.bucketReleased,
        bound: fleet.bound(name),
      };
      events.push(row);
      ctx.log(
        `${name}: even after ${num(ms / 1000, 1)} virtual s, ${row.moved} buckets moved (min ${need}); ` +
          `${num((performance.now() - started) / 1000, 1)} s real so far`,
      );
      return row;
    };

    // Cold start: every worker at once.
    await step(
      'cold start',
      () => {
        for (let i = 0; i < p.workers; i++) fleet.add();
      },
      () => p.buckets,
    );
    // Steady state: what a settled fleet costs the lock backend.
    await fleet.clock.runFor(p.steadyMs / 4);
    const steady0 = fleet.counts();
    await fleet.clock.runFor(p.steadyMs);
    const steady = diff(fleet.counts(), steady0);
    const steadyWorkers = fleet.live().length;

    await step(
      '1 joins',
      () => fleet.add(),
      (s) => share(p.buckets, s.live + 1),
    );
    await step(
      `${p.joiners} join`,
      () => {
        for (let i = 0; i < p.joiners; i++) fleet.add();
      },
      (s) => p.joiners * Math.floor(p.buckets / (s.live + p.joiners)),
    );
    await step(
      '1 leaves (stop)',
      () => fleet.stop(1),
      (s) => s.heldBy(fleet.pick(1)),
    );
    await step(
      `${p.leavers} leave (stop)`,
      () => fleet.stop(p.leavers),
      (s) => s.heldBy(fleet.pick(p.leavers)),
    );
    await step(
      '1 crashes',
      () => fleet.crash(1),
      (s) => s.heldBy(fleet.pick(1)),
    );
    await step(
      `${p.crashes} crash`,
      () => fleet.crash(p.crashes),
      (s) => s.heldBy(fleet.pick(p.crashes)),
    );
    const cut = Math.round(fleet.live().length * p.partitionShare);
    await step(
      `${cut} partitioned (${Math.round(p.partitionShare * 100)}%)`,
      () => fleet.partition(cut),
      (s) => s.heldBy(fleet.pick(cut)),
    );
    await step(
      'partition heals',
      () => fleet.heal(),
      (s) => cut * Math.floor(p.buckets / (s.live + cut)),
    );
    const listBytes = fleet.listBytes();
    await fleet.shutdown();
    const realMs = performance.now() - started;

    const virtualSteadyS = p.steadyMs / 1000;
    const perSec = Object.fromEntries(OPS.map((op) => [op, steady[op] / virtualSteadyS]));
    const totalPerSec = OPS.reduce((sum, op) => sum + perSec[op], 0);
    const sizing = estimateSizing(p, steadyWorkers, perSec, listBytes);
    return {
      parameters: p,
      rounds: events,
      summary: [{ workers: steadyWorkers, perSec, totalPerSec, sizing }],
      steady: { workers: steadyWorkers, perSec, totalPerSec, counts: steady },
      sizing,
      realMs,
      table: [
        markdownTable(
          [
            'event',
            'live workers',
            'to even spread (virtual s)',
            'expected',
            'rounds',
            'buckets moved',
            'minimum',
            'moved ÷ minimum',
            'acquire requests',
          ],
          events.map((e) => [
            e.event,
            num(e.live),
            num(e.virtualMs / 1000, 1),
            e.bound,
            num(e.rounds, 1),
            num(e.moved),
            num(e.minimum),
            e.minimum ? num(e.moved / e.minimum, 2) : '–',
            num(e.acquireRequests),
          ]),
        ),
        '',
        markdownTable(
          ['steady state', ...OPS.slice(0, 4), 'total'],
          [
            ['requests/s, fleet', ...OPS.slice(0, 4).map((op) => num(perSec[op], 1)), num(totalPerSec, 1)],
            [
              'requests/s, per worker',
              ...OPS.slice(0, 4).map((op) => num(perSec[op] / steadyWorkers, 3)),
              num(totalPerSec / steadyWorkers, 3),
            ],
          ],
        ),
        '',
        markdownTable(
          ['backend (estimate)', 'reads/s', 'writes/s', 'read volume', 'capacity'],
          sizing.rows.map((r) => [r.backend, r.reads, r.writes, r.bytes, r.capacity]),
        ),
      ].join('\n'),
      notes: [
        `${p.workers} workers, ${num(p.buckets)} buckets, default bucket settings (balance every ${p.balanceIntervalMs} ms), ` +
          `TTL ${p.ttlMs / 1000} s, lock-delay ${p.lockDelayMs / 1000} s; the memory store expires a session TTL after its last renewal (Consul: up to 2 × TTL). ` +
          `Even spread = every bucket held by a live worker and max − min ≤ 1 among them, sampled every ${p.sampleEveryMs} ms of virtual time. ` +
          'Rounds = list() calls per live worker while converging (one per balancing round). ' +
          'Moved = bucket leases acquired; minimum = what any rule must move (a joiner’s share, a leaver’s or crashed worker’s buckets). ' +
          `Steady state over ${virtualSteadyS} virtual s with no tasks (idle polling of the task source is not lock traffic). ` +
          `Real time for the whole simulation: ${num(realMs / 1000, 1)} s.`,
        ...sizing.notes,
      ],
    };
  },
};

/** The even share of one worker (rounded down). */
function share(buckets, workers) {
  return Math.floor(buckets / workers);
}

function diff(a, b) {
  const out = {};
  for (const key of Object.keys(a)) out[key] = a[key] - (b[key] ?? 0);
  return out;
}

/**
 * The simulated fleet: workers, their store views, and the shared store. Workers are picked for stop, crash
 * and partition from the front of the live list (oldest first), so `pick(n)` before an event names them.
 */
class Fleet {
  constructor(core, p) {
    this.core = core;
    this.p = p;
    this.clock = new SimClock();
    // The store's own timers (session expiry) change what list() answers: they bump the version too.
    this.version = 0;
    const clock = this.clock;
    const storeClock = {
      monotonicNow: () => clock.monotonicNow(),
      wallNow: () => clock.wallNow(),
      setTimeout: (fn, ms) =>
        clock.setTimeout(() => {
          this.version++;
          fn();
        }, ms),
      clearTimeout: (handle) => clock.clearTimeout(handle),
    };
    this.store = new core.MemoryLockStore({ clock: storeClock });
    this.listCache = { version: -1, prefix: undefined, holders: [] };
    this.source = emptySource(core, this.clock, p.buckets);
    this.members = [];
    this.seq = 0;
    this.count = Object.fromEntries([...OPS, 'bucketAcquired', 'bucketReleased'].map((k) => [k, 0]));
    this.root = `buckets/${this.source.namespace}/${p.buckets}/`;
  }

  counts() {
    return { ...this.count };
  }

  live() {
    return this.members.filter((m) => m.state === 'live');
  }

  pick(n) {
    return this.live().slice(0, n);
  }

  add() {
    const id = `w${String(this.seq++).padStart(4, '0')}`;
    const clock = this.clock.view();
    const member = { id, clock, state: 'live', cut: false };
    const locks = new this.core.MemoryLockProvider({
      store: this.#storeView(member),
      clock,
      ttlMs: this.p.ttlMs,
      lockDelayMs: this.p.lockDelayMs,
    });
    member.worker = new this.core.Worker({
      id,
      locks,
      source: this.source,
      leaseBy: 'bucket',
      buckets: { count: this.p.buckets, balanceIntervalMs: this.p.balanceIntervalMs },
      schedule: { every: this.p.everyMs },
      clock,
      random: seededRandom(this.seq),
      handler: () => undefined,
    });
    member.worker.on('error', () => undefined);
    member.run = member.worker.run().catch(() => undefined);
    this.members.push(member);
    return member;
  }

  stop(n) {
    for (const m of this.pick(n)) {
      m.state = 'stopped';
      m.stopped = m.worker.stop({ graceMs: 0 });
    }
  }

  crash(n) {
    for (const m of this.pick(n)) {
      m.state = 'crashed';
      m.clock.freeze();
    }
  }

  partition(n) {
    for (const m of this.pick(n)) {
      m.state = 'partitioned';
      m.cut = true;
    }
  }

  heal() {
    for (const m of this.members) {
      if (m.state !== 'partitioned') continue;
      m.state = 'live';
      m.cut = false;
    }
  }

  async shutdown() {
    const live = this.members.filter((m) => m.state === 'live' || m.state === 'stopped');
    const done = Promise.all(live.map((m) => m.worker.stop({ graceMs: 0 }).then(() => m.run)));
    let finished = false;
    void done.then(() => {
      finished = true;
    });
    for (let i = 0; i < 100 && !finished; i++) await this.clock.runFor(1_000);
  }

  /** The store as one worker sees it: counted, and failing while the worker is cut off or dead. */
  #storeView(member) {
    const store = this.store;
    const fleet = this;
    const check = (operation) => {
      if (member.cut || member.state === 'crashed') {
        throw new fleet.core.UnavailableError(`${member.id} cut off: ${operation}`, { backend: 'memory' });
      }
    };
    const wrap = {
      list(prefix) {
        check('list');
        fleet.count.list++;
        return fleet.list(prefix);
      },
      acquire(sessionId, key, ...rest) {
        check('acquire');
        fleet.count.acquire++;
        const result = store.acquire(sessionId, key, ...rest);
        if (result) fleet.version++;
        if (result && key.startsWith(`${fleet.root}b/`)) fleet.count.bucketAcquired++;
        return result;
      },
      release(sessionId, key, fence) {
        check('release');
        fleet.count.release++;
        fleet.version++;
        const released = store.release(sessionId, key, fence);
        if (released && key.startsWith(`${fleet.root}b/`)) fleet.count.bucketReleased++;
        return released;
      },
      renewSession(id) {
        check('renew');
        fleet.count.renew++;
        return store.renewSession(id);
      },
    };
    return new Proxy(store, {
      get(target, prop) {
        if (prop === 'clock') return target.clock;
        if (Object.hasOwn(wrap, prop)) return wrap[prop];
        const value = target[prop];
        if (typeof value !== 'function') return value;
        return (...args) => {
          check(String(prop));
          fleet.count.other++;
          if (prop !== 'holder' && prop !== 'hasSession') fleet.version++;
          return value.apply(target, args);
        };
      },
    });
  }

  /**
   * The store's list(), answered from the last answer while nothing changed (no acquire, release, session
   * change or store timer since): the simulation's time goes into the workers' balancing, not into copying
   * thousands of unchanged entries for each of them. What the workers receive is the same.
   */
  list(prefix = '') {
    const cache = this.listCache;
    if (cache.version !== this.version || cache.prefix !== prefix) {
      cache.holders = this.store.list(prefix);
      cache.version = this.version;
      cache.prefix = prefix;
    }
    return [...cache.holders];
  }

  /** Who holds what, from the store itself. */
  snapshot() {
    const holders = this.list(this.root);
    const memberOfSession = new Map();
    const bucketsOfSession = new Map();
    for (const h of holders) {
      const rest = h.key.slice(this.root.length);
      if (rest.startsWith('m/')) memberOfSession.set(h.sessionId, rest.slice(2));
      else if (rest.startsWith('b/'))
        bucketsOfSession.set(h.sessionId, (bucketsOfSession.get(h.sessionId) ?? 0) + 1);
    }
    const held = new Map();
    for (const [session, n] of bucketsOfSession) {
      const id = memberOfSession.get(session) ?? `session:${session}`;
      held.set(id, (held.get(id) ?? 0) + n);
    }
    const live = this.live();
    return {
      live: live.length,
      held,
      heldBy: (list) => list.reduce((sum, m) => sum + (held.get(m.id) ?? 0), 0),
    };
  }

  /** Every bucket held by a live worker, and live workers within one bucket of each other. */
  isEven() {
    const { held } = this.snapshot();
    const live = this.live();
    let total = 0;
    let min = Infinity;
    let max = -Infinity;
    for (const m of live) {
      const n = held.get(m.id) ?? 0;
      total += n;
      min = Math.min(min, n);
      max = Math.max(max, n);
    }
    return total === this.p.buckets && max - min <= 1;
  }

  /** Runs virtual time until the spread is even; returns the virtual time of the first even sample. */
  async untilEven(timeoutMs) {
    const deadline = this.clock.monotonicNow() + timeoutMs;
    while (this.clock.monotonicNow() < deadline) {
      await this.clock.runFor(this.p.sampleEveryMs);
      if (this.isEven()) return this.clock.monotonicNow();
    }
    return Number.NaN;
  }

  /** Bytes of one `list()` answer at Consul (JSON, base64 values) for the whole prefix, as now held. */
  listBytes() {
    let bytes = 2;
    for (const h of this.list(this.root)) {
      const value = Buffer.byteLength(h.value ?? '');
      const key = Buffer.byteLength(`bench/${h.key}`);
      // {"LockIndex":1,"Key":"…","Flags":0,"Value":"…","Session":"<uuid>","CreateIndex":123456,"ModifyIndex":123456},
      bytes += 100 + key + Math.ceil(value / 3) * 4 + 36 + 14;
    }
    return bytes;
  }

  /** The expected time to an even spread for an event, from the settings (a sentence). */
  bound(event) {
    const { balanceIntervalMs: r, ttlMs, lockDelayMs, retryMaxMs } = this.p;
    const s = (ms) => num(ms / 1000, 1);
    if (/crash|partitioned/.test(event)) {
      // The last renewal was up to TTL/2 before the event; the store expires the session TTL after it.
      return `${s(ttlMs / 2 + lockDelayMs)}–${s(ttlMs + lockDelayMs + 2 * r)} (expiry + lock-delay + ≤2 rounds)`;
    }
    if (/heals/.test(event)) return `≤ ${s(retryMaxMs + 3 * r)} (session-open backoff + a few rounds)`;
    return `≤ ${s(3 * r)} (a few rounds)`;
  }
}

/**
 * Sizing figures for real backends from the simulated rates, at each backend's default timers.
 *
 * Consul (TTL 15 s, blocking wait 60 s): list() is one consistent `GET /v1/kv/<prefix>?recurse` answering every
 * membership and bucket key; each session is renewed with one `PUT /v1/session/renew` per TTL/2; a lease held
 * longer than the TTL is watched by one blocking `GET` on its key per wait (idle long-polls); acquire is one
 * `PUT /v1/txn`, release one `PUT /v1/kv`.
 *
 * DynamoDB (lease 20 s): list() is a consistent Scan of the whole lock table (1 RCU per 4 KB read); every held
 * lease (each bucket and each membership key) is rewritten by one conditional UpdateItem per heartbeat
 * (lease/3), 1 WCU for items up to 1 KB; acquire and release are one conditional write each.
 */
function estimateSizing(p, workers, perSec, listBytes) {
  const leases = p.buckets + workers;
  const consul = { ttlMs: 15_000, waitMs: 60_000 };
  const dynamo = { ttlMs: 20_000, itemBytes: 200 };
  const consulLists = perSec.list;
  const consulMonitors = leases / (consul.waitMs / 1000);
  const consulRenewals = workers / (consul.ttlMs / 2 / 1000);
  const consulWrites = consulRenewals + perSec.acquire + perSec.release;
  const scanRcu = Math.ceil((leases * dynamo.itemBytes) / 4096);
  const heartbeats = leases / (dynamo.ttlMs / 3 / 1000);
  const dynamoRcu = perSec.list * scanRcu;
  const dynamoWcu = heartbeats + perSec.acquire + perSec.release;
  const mib = (bytes) => `${num(bytes / 2 ** 20, 1)} MiB/s`;
  return {
    listBytes,
    scanRcu,
    rows: [
      {
        backend: `Consul (${num(workers)} sessions, ${num(leases)} keys)`,
        reads: `${num(consulLists)} lists + ${num(consulMonitors)} blocking GETs`,
        writes: `${num(consulWrites)} (renewals ${num(consulRenewals)})`,
        bytes: `${mib(consulLists * listBytes)} (${num(listBytes / 1024, 0)} KiB per list)`,
        capacity: 'consistent reads go through the leader',
      },
      {
        backend: `DynamoDB (${num(leases)} leased items)`,
        reads: `${num(perSec.list)} Scans`,
        writes: `${num(dynamoWcu)} conditional writes`,
        bytes: `${mib(perSec.list * leases * dynamo.itemBytes)} scanned`,
        capacity: `${num(dynamoRcu)} RCU/s + ${num(dynamoWcu)} WCU/s`,
      },
    ],
    notes: [
      `Consul estimate at its default timers (TTL 15 s, blocking wait 60 s): reads = list() calls (one consistent recursive read ` +
        `answering ${num(leases)} keys, ~${num(listBytes / 1024, 0)} KiB of JSON as held at the end of the run) + one blocking GET per ` +
        'held lease per wait; writes = one session renewal per worker per TTL/2 + acquire txns + releases.',
      `DynamoDB estimate at its default lease (20 s): each list() is a consistent Scan of the whole lock table (~${dynamo.itemBytes} B per ` +
        `item → ${num(scanRcu)} RCU per Scan, more if the table holds other keys); writes = one conditional write per held lease per ` +
        `heartbeat (lease/3: ${num(heartbeats)} WCU/s for ${num(leases)} leases) + acquires + releases, 1 WCU each.`,
    ],
  };
}

/** A deterministic random source per worker, so runs repeat. */
function seededRandom(seed) {
  let state = (seed * 2654435761) >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
}

/**
 * A task source with no tasks and as many shards as buckets: the balancing never looks at tasks, and today's
 * sources have 1,024 shards (so at most 1,024 buckets), fewer than the 4,096 simulated. The memory source
 * answers everything except the layout (stored here) and `dueBuckets` (nothing is ever due).
 */
function emptySource(core, clock, buckets) {
  const base = new core.MemoryTaskSource({ clock });
  let layout = null;
  const own = {
    shards: Math.max(base.shards, buckets),
    leaseLayout: async () => layout,
    declareLeaseLayout: async (request) => {
      layout ??= Object.freeze({
        mode: request.mode,
        buckets: request.buckets ?? null,
        locks: request.locks ?? null,
        epoch: 2,
      });
      return layout;
    },
    dueBuckets: async () => [],
    claimBucket: async () => ({ ok: true, tasks: [], buried: 0 }),
  };
  return new Proxy(base, {
    get(target, prop) {
      if (Object.hasOwn(own, prop)) return own[prop];
      const value = target[prop];
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
