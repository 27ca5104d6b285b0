// The fault schedule: drawn up front from the seed, so `--seed` replays the same faults at the same moments
// against the same workers.

/** Every kind of fault, with what it does. */
export const FAULT_KINDS = {
  kill: 'SIGKILL a worker, restart it later',
  pause: 'SIGSTOP a worker for longer than the lease TTL, then SIGCONT',
  latency: "add latency to a worker's connections (lock server, PostgreSQL or both)",
  reset: "reset a worker's connections (lock server, PostgreSQL or both)",
  blackhole: "silence a worker's connections for longer than the TTL, then deliver or reset",
  election: 'Consul leader election: 500 No cluster leader, then every session TTL restarts',
  'lost-answers': 'the lock server applies the next writes but their answers are lost',
  'pg-lost-answers': "PostgreSQL runs a worker's next statements but the answers are lost (connection reset)",
  skew: 'a worker incarnation starts with its wall clock hours off (BATON_TEST_CLOCK_SKEW_MS)',
  restart:
    'the lock server is killed (kill -9) and restarted on the same port and data (etcd, Redis; PostgreSQL: its connections terminated)',
};

/** Backends whose lock server the harness can kill and restart (the `restart` fault). */
export const RESTARTABLE = new Set(['etcd', 'redis', 'postgres']);

const DEFAULT_WEIGHTS = {
  kill: 3,
  pause: 3,
  blackhole: 3,
  latency: 2,
  reset: 2,
  election: 1.5,
  'lost-answers': 1.5,
  'pg-lost-answers': 1.5,
  restart: 0.5,
};

/**
 * @typedef {object} PlannedFault
 * @property {number} at ms after the fault phase starts
 * @property {string} kind a key of {@link FAULT_KINDS}
 * @property {number} [worker] slot index (worker faults)
 * @property {'lock' | 'pg' | 'both'} [target] network faults
 * @property {number} [durationMs]
 * @property {number} [latencyMs]
 * @property {'deliver' | 'reset'} [heal] how a blackhole ends
 * @property {number} [count] lost answers
 */

/**
 * Draws the fault schedule of a run.
 * @param {import('./random.mjs').Random} random
 * @param {object} o
 * @param {number} o.durationMs length of the fault phase
 * @param {number} o.workers number of worker slots (indexes 1..workers)
 * @param {'consul' | 'dynamodb' | 'etcd' | 'redis' | 'postgres'} o.backend
 * @param {number} o.ttlMs lease TTL of the workers
 * @param {number} o.reclaimAfterMs when the source lists a running task again
 * @param {number} o.meanIntervalMs mean time between faults
 * @param {Partial<Record<string, number>>} [o.weights]
 * @returns {PlannedFault[]}
 */
export function planFaults(random, o) {
  const weights = { ...DEFAULT_WEIGHTS, ...o.weights };
  if (o.backend !== 'consul') weights.election = 0;
  if (!RESTARTABLE.has(o.backend)) weights.restart = 0;
  const maxImpaired = Math.max(1, Math.ceil(o.workers / 2));
  /** Per worker: until when its process, lock link and PostgreSQL link are busy with a fault. */
  const busy = new Map();
  for (let w = 1; w <= o.workers; w++) busy.set(w, { process: 0, lock: 0, pg: 0, impaired: 0 });
  let serverBusy = 0;
  const faults = [];
  // Faults start in the first 90% of the phase, so the last ones can end before it does.
  const lastStart = o.durationMs * 0.9;
  // Every enabled kind comes first once, in a seeded order, so even a short run exercises all of them.
  const firsts = Object.keys(weights).filter((k) => weights[k] > 0);
  if (firsts.length === 0) return [];
  for (let i = firsts.length - 1; i > 0; i--) {
    const j = random.int(0, i);
    [firsts[i], firsts[j]] = [firsts[j], firsts[i]];
  }
  for (
    let at = random.exponential(o.meanIntervalMs);
    at < lastStart;
    at +=
      firsts.length > 0
        ? Math.min(random.exponential(o.meanIntervalMs), o.meanIntervalMs)
        : random.exponential(o.meanIntervalMs)
  ) {
    const kind = firsts[0] ?? random.weighted(weights);
    if (kind === 'election' || kind === 'lost-answers' || kind === 'restart') {
      if (at < serverBusy) continue;
      const fault =
        kind === 'election'
          ? { at, kind, durationMs: Math.round(random.between(300, 2.5 * o.ttlMs)) }
          : kind === 'restart'
            ? { at, kind, durationMs: Math.round(random.between(300, 3_000)) }
            : { at, kind, count: random.int(1, 4) };
      serverBusy = at + (fault.durationMs ?? 0) + (kind === 'restart' ? 3_000 : 500);
      faults.push(fault);
      if (firsts[0] === kind) firsts.shift();
      continue;
    }
    const impairing = kind === 'kill' || kind === 'pause' || kind === 'blackhole';
    const impairedNow = [...busy.values()].filter((b) => b.impaired > at).length;
    if (impairing && impairedNow >= maxImpaired) continue;
    const target =
      kind === 'kill' || kind === 'pause'
        ? undefined
        : kind === 'pg-lost-answers'
          ? 'pg'
          : random.weighted({ lock: 45, pg: 35, both: 20 });
    const links = target === undefined ? ['process'] : target === 'both' ? ['lock', 'pg'] : [target];
    const free = [...busy.entries()].filter(([, b]) => links.every((l) => b[l] <= at) && b.process <= at);
    if (free.length === 0) continue;
    const [worker, slot] = random.pick(free);
    let fault;
    let busyMs;
    switch (kind) {
      case 'kill': {
        const durationMs = Math.round(random.between(300, 3_000));
        fault = { at, kind, worker, durationMs };
        busyMs = durationMs + 3_000;
        break;
      }
      case 'pause': {
        const durationMs = Math.round(random.between(1.5 * o.ttlMs, o.reclaimAfterMs + 3 * o.ttlMs));
        fault = { at, kind, worker, durationMs };
        busyMs = durationMs + 500;
        break;
      }
      case 'blackhole': {
        const durationMs = Math.round(random.between(1.2 * o.ttlMs, 3.5 * o.ttlMs));
        fault = { at, kind, worker, target, durationMs, heal: random.chance(0.5) ? 'deliver' : 'reset' };
        busyMs = durationMs + 500;
        break;
      }
      case 'latency': {
        const durationMs = Math.round(random.between(2_000, 8_000));
        fault = {
          at,
          kind,
          worker,
          target,
          durationMs,
          latencyMs: Math.round(random.between(100, 0.5 * o.ttlMs)),
        };
        busyMs = durationMs;
        break;
      }
      case 'pg-lost-answers':
        fault = { at, kind, worker, target, count: random.int(1, 3) };
        busyMs = 500;
        break;
      default:
        fault = { at, kind: 'reset', worker, target };
        busyMs = 200;
    }
    for (const link of links) slot[link] = at + busyMs;
    if (impairing) slot.impaired = Math.max(slot.impaired, at + busyMs);
    faults.push({ ...fault, at: Math.round(at) });
    if (firsts[0] === kind) firsts.shift();
  }
  return faults.map((f) => ({ ...f, at: Math.round(f.at) }));
}

/** Wall-clock skew for a new worker incarnation: 40% of them are hours ahead or behind. */
export function drawSkew(random) {
  if (!random.chance(0.4)) return 0;
  const hours = random.between(1, 12);
  return Math.round((random.chance(0.5) ? 1 : -1) * hours * 3_600_000);
}
