// The per-kind limit's invariant (`--limit kind=n`): at no moment more than n handlers of the kind ran under
// a permit that was valid at the lock server. A handler records its start and end (database clock) and the
// permit it ran under (slot key and fence); the slot's lease at the server says when that permit was valid.
// A handler of a paused or partitioned worker may go on running after its permit expired at the server (the
// server gave the slot to someone else): like the lock invariants, the guarantee covers valid permits only,
// so each execution counts from its start to its end *clipped to its permit's validity at the server*.

/**
 * @typedef {object} LimitSpec
 * @property {string} kind the limited task kind
 * @property {number} n its limit
 */

/**
 * The lease of the slot key a permit was granted under: the one with this fence (`exact`), or, where a
 * holder's retried acquire rewrites the entry (Consul), the newest granted at or below it.
 * @param {import('./checker.mjs').Lease[] | undefined} leases one key's leases
 */
function permitLease(leases, fence, exact) {
  if (!leases) return undefined;
  if (exact) return leases.find((l) => l.fence === fence);
  let found;
  for (const lease of leases)
    if (lease.fence <= fence && (!found || lease.fence > found.fence)) found = lease;
  return found;
}

/** The most intervals open at one moment (an end at the same moment as a start closes first), and when. */
export function maxOverlap(intervals) {
  const points = [];
  for (const i of intervals) {
    if (!(i.end > i.start)) continue;
    points.push({ at: i.start, d: 1, item: i }, { at: i.end, d: -1, item: i });
  }
  points.sort((a, b) => a.at - b.at || a.d - b.d);
  const open = new Set();
  let max = 0;
  let at;
  let atMax = [];
  for (const p of points) {
    if (p.d < 0) open.delete(p.item);
    else open.add(p.item);
    if (open.size > max) {
      max = open.size;
      at = p.at;
      atMax = [...open];
    }
  }
  return { max, at, items: atMax };
}

/**
 * Checks the limit over a run's executions. `tasks` carry their `kind`; executions their `permitKey` and
 * `permitFence`; `leases` are every lease the lock server granted (slot keys `limit/<kind>/slot/<i>` among them).
 * @param {{ tasks: Array<{ id: string, kind?: string, status: string }>, executions: import('./checker.mjs').Execution[], leases: import('./checker.mjs').Lease[], exactFences?: boolean }} data
 * @param {LimitSpec} limit
 */
export function checkLimit(data, limit) {
  const violations = [];
  const fail = (message) => violations.push({ invariant: 'kind-limit', message });
  const limited = new Set(data.tasks.filter((t) => t.kind === limit.kind).map((t) => t.id));
  const prefix = `limit/${limit.kind}/slot/`;
  const slotLeases = new Map();
  for (const lease of data.leases) {
    if (!lease.key.startsWith(prefix)) continue;
    const list = slotLeases.get(lease.key);
    if (list) list.push(lease);
    else slotLeases.set(lease.key, [lease]);
  }
  const exact = data.exactFences !== false;
  const end = (t) => (t === null || t === undefined ? Number.POSITIVE_INFINITY : t);
  const raw = [];
  const valid = [];
  let withoutPermit = 0;
  const executions = data.executions.filter((e) => limited.has(e.taskId));
  for (const e of executions) {
    if (e.permitKey === null || e.permitKey === undefined || e.permitFence === null) {
      raw.push({ start: e.startedAt, end: end(e.endedAt), e });
      withoutPermit++;
      fail(`task ${e.taskId} (fence ${e.fence}, ${e.worker}) ran without a permit of ${limit.kind}`);
      continue;
    }
    const lease = permitLease(slotLeases.get(e.permitKey), e.permitFence, exact);
    // A handler whose end was never recorded (killed worker, end write lost) counts raw until its permit's end.
    raw.push({ start: e.startedAt, end: end(e.endedAt ?? lease?.end), e });
    if (!lease) {
      fail(
        `task ${e.taskId} (${e.worker}) ran under permit ${e.permitKey} fence ${e.permitFence}, which the lock server never granted`,
      );
      continue;
    }
    valid.push({
      start: Math.max(e.startedAt, lease.start),
      end: Math.min(end(e.endedAt), end(lease.end)),
      e,
    });
  }
  const overlap = maxOverlap(valid);
  if (overlap.max > limit.n) {
    const who = overlap.items.map((i) => `task ${i.e.taskId} (${i.e.worker}, ${i.e.permitKey})`).join(', ');
    fail(
      `${overlap.max} handlers of ${limit.kind} ran under valid permits at ${new Date(overlap.at).toISOString()}, limit ${limit.n}: ${who}`,
    );
  }
  const byStatus = (status) => data.tasks.filter((t) => limited.has(t.id) && t.status === status).length;
  return {
    violations,
    metrics: {
      kind: limit.kind,
      limit: limit.n,
      tasks: limited.size,
      done: byStatus('done'),
      dead: byStatus('dead'),
      executions: executions.length,
      withoutPermit,
      slotsUsed: slotLeases.size,
      permitLeases: [...slotLeases.values()].reduce((n, l) => n + l.length, 0),
      maxConcurrentValid: overlap.max,
      maxConcurrentRaw: maxOverlap(raw).max,
    },
  };
}
