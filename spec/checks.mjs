// The checks `npm run verify` runs on spec/baton.pml (per-task leases), spec/buckets.pml (bucket leases) and
// spec/semaphore.pml (semaphore permits):
// the faithful models at bounded sizes (every property must hold), each planted bug (its property must fail),
// and what survives a broken lock.

/** @typedef {import('./spin.mjs').Check} Check */

/** Sizes of the faithful runs: workers, tasks, max attempts per task, faults in total. */
const size = (nw, nt, maxatt, faults) => ({ NW: nw, NT: nt, MAXATT: maxatt, FAULTS: faults });

/** Every property the safety runs assert, by the name the model's assertions carry. */
export const PROPERTIES = {
  exactly_once:
    "each task's outcome applied once, by its current claim: complete/fail only under the task's fence while it runs; at most one transition into done or dead; never out of done or dead",
  one_holder:
    'at most one worker trusts a lease on a key at any moment (its TTL has not run out on its own clock)',
  fences_rise: 'fences granted per key strictly increase; every claim carries a fence above the task’s',
  attempts_bounded: 'no task is claimed more than max_attempts times',
  effect_fenced:
    "the handler's external effect is applied at most once per fence, never below a fence already applied, only by a fence that claimed the task, never another fence's after done; the effect that stands on a done task is the completing claim's",
  reports_true:
    'task-completed / task-failed / task-dead are reported only for writes that applied, stale-write for a complete only when it did not',
  fence_bound:
    'the model’s fence bound MAXF (and, bucket model, the token bound MAXTOK) is never reached (so it cuts nothing off)',
  bucket_fenced:
    'bucket model: no claim or settlement of a task applies from a lease older (in grant order) than one whose claim already wrote a bucket holding the task',
  since_above:
    'bucket model: the first token of a new lease of a bucket (since_token) is above every token its tasks carry',
  finished: 'every task ends done or dead (LTL <> all finished, weak fairness, finitely many faults)',
  limit_bound:
    'semaphore model: at most `limit` slots held at the service and at most `limit` processes trusting a permit, in every state',
  no_refusal: 'semaphore model: CONFIG_INVALID (limit) is never raised',
};

const small = size(2, 1, 2, 2);

/** Planted bugs: each must produce a counterexample of the property it names. */
export const VARIANTS = [
  {
    id: 'UNFENCED_COMPLETE',
    fails: 'exactly_once',
    title: 'complete without `fence = $fence` (only `status = running`)',
  },
  { id: 'CLAIM_LE', fails: 'fences_rise', title: 'claim accepts an equal fence (`fence <= $fence`)' },
  {
    id: 'CLAIM_REVERSED',
    fails: 'finished',
    kind: 'liveness',
    title: 'claim compares the wrong way round (`fence > $fence`): retries never get a claim',
  },
  { id: 'CLAIM_ANY_STATUS', fails: 'exactly_once', title: 'claim without `status IN (runnable)`' },
  {
    id: 'NO_BURY',
    fails: 'attempts_bounded',
    title: 'claim of a running task in its last attempt runs it again instead of burying it',
  },
  { id: 'RELEASE_NO_OWNER', fails: 'one_holder', title: 'release without the owner check' },
  {
    id: 'RENEW_AFTER_EXPIRY',
    fails: 'one_holder',
    title: 'a renewal after the server expired the lease extends it anyway',
  },
  {
    id: 'EXPIRE_EARLY',
    fails: 'one_holder',
    title: 'the server frees a lease while its holder still trusts it (clock drift beyond the bound)',
  },
  {
    id: 'FENCE_RESET',
    fails: 'fences_rise',
    title: 'a per-key fence counter that restarts when the key is deleted',
  },
  { id: 'UNFENCED_EFFECT', fails: 'effect_fenced', title: "the effect's receiver ignores the fence" },
  {
    id: 'EFFECT_GE',
    fails: 'effect_fenced',
    title: 'the receiver accepts a fence equal to the highest seen',
  },
  {
    id: 'RUN_UNCLAIMED',
    fails: 'effect_fenced',
    title: 'the worker runs the handler when the claim failed in transport',
  },
  {
    id: 'REREAD_ANY_FENCE',
    fails: 'reports_true',
    title: 'the lost-reply re-read takes `done` as applied without comparing the fence',
  },
  { id: 'NO_REREAD', fails: 'reports_true', title: 'no re-read after a lost reply' },
];

/** Sizes of the bucket model: workers, tasks, buckets, faults in total (max attempts 2, one hand-back). */
const bsize = (nw, nt, nb, faults) => ({ NW: nw, NT: nt, NB: nb, MAXATT: 2, FAULTS: faults, HANDOVERS: 1 });
const bsmall = bsize(2, 2, 1, 1);

/** Planted bugs of the bucket model (spec/buckets.pml): each must produce a counterexample. */
export const BUCKET_VARIANTS = [
  {
    id: 'SETTLE_ANY_TOKEN',
    fails: 'exactly_once',
    title: 'settle without `t.fence = i.token` (only `status = running` and the bucket’s fence)',
  },
  {
    id: 'TOKEN_IS_LOCK_FENCE',
    fails: 'exactly_once',
    defines: { OFF_fences_rise: 1 },
    title:
      'the claim token is the bucket lease’s fence: a task retried inside one lease gets its earlier attempt’s token, and that attempt’s late fail lands on the retry',
  },
  {
    id: 'CLAIM_NO_RECORD',
    fails: 'bucket_fenced',
    title:
      'claim without `WHERE b.lock_fence <= EXCLUDED.lock_fence`: a stale lease claims after a newer one',
  },
  {
    id: 'SETTLE_NO_RECORD',
    fails: 'bucket_fenced',
    defines: { LIMIT: 1 },
    title:
      'settle without `b.lock_fence = $4`: a stale lease settles a task the newer lease’s first claim (limit 1) did not take',
  },
  {
    id: 'SETTLE_NO_SHARE_LOCK',
    fails: 'bucket_fenced',
    defines: { LIMIT: 1 },
    title:
      'settle reads the lease row without `FOR SHARE`: a newer lease’s claim commits between the check and the task writes',
  },
  {
    id: 'HANDOVER_SAME_FENCE',
    fails: 'bucket_fenced',
    defines: { OFF_fences_rise: 1, OFF_one_holder: 1 },
    title:
      'a bucket handed over without a new fence: the old holder’s late writes pass as the new holder’s (fences_rise and one_holder, off here, fail first)',
  },
  {
    id: 'TOKEN_BEFORE_LOCK',
    fails: 'since_above',
    defines: { OFF_fences_rise: 1 },
    title:
      'tokens drawn before the bucket row is locked: an older lease’s concurrent claim writes a token above the new lease’s since_token (fences_rise, off here, fails first: a claim’s token below the task’s)',
  },
  {
    id: 'CLAIM_NO_LAYOUT',
    fails: 'bucket_fenced',
    defines: { MIXED: 1 },
    title:
      'claim without the layout check: a worker with another bucket count (another lock key) claims in a bucket whose holder is live',
  },
  {
    id: 'NO_CONFIRM_ON_REFUSAL',
    fails: 'reports_true',
    defines: { NT: 1, FAULTS: 2 },
    depthFirst: true,
    title:
      'a retried settle refused as a whole is not read back (before fefb719): an applied complete is reported as a stale write',
  },
  {
    id: 'CONFIRM_ANY_TOKEN',
    fails: 'reports_true',
    defines: { NT: 1, FAULTS: 2 },
    depthFirst: true,
    title: 'the read-back takes `done` as applied without comparing the token',
  },
];

/**
 * The bucket model's checks. `extended` adds larger faithful runs (minutes each: `node spec/verify.mjs
 * --extended`; `npm run verify` leaves them out).
 */
export function bucketChecks(extended = false) {
  /** @type {Check[]} */
  const checks = [
    {
      id: 'buckets-w2-t2-b1-f1',
      defines: bsize(2, 2, 1, 1),
      what: 'two tasks in one bucket, claims of both',
    },
    {
      id: 'buckets-w2-t1-b1-f2',
      defines: bsize(2, 1, 1, 2),
      what: 'two faults (a reply lost after a takeover)',
    },
    {
      id: 'buckets-w2-t2-b1-f1-limit1',
      defines: { ...bsize(2, 2, 1, 1), LIMIT: 1 },
      what: 'claims of one task at a time (partial takeovers)',
      extended: true,
    },
    {
      id: 'buckets-w2-t2-b2-f1',
      defines: bsize(2, 2, 2, 1),
      what: 'two buckets, two keys (rebalancing)',
      extended: true,
    },
    {
      id: 'buckets-mixed-w2-t2-f1',
      defines: { ...bsize(2, 2, 1, 1), MIXED: 1 },
      what: 'a second worker with another bucket count',
      extended: true,
    },
    {
      id: 'buckets-live-w2-t1-b1-f1',
      kind: 'liveness',
      defines: bsize(2, 1, 1, 1),
      what: 'every task ends done or dead',
    },
    {
      id: 'buckets-live-w2-t1-b1-f2',
      kind: 'liveness',
      defines: bsize(2, 1, 1, 2),
      what: 'every task ends done or dead, two faults',
      extended: true,
    },
    {
      id: 'buckets-live-w2-t2-b1-f1',
      kind: 'liveness',
      defines: bsize(2, 2, 1, 1),
      what: 'every task ends done or dead, two tasks',
      extended: true,
    },
  ]
    .filter((c) => !c.extended || extended)
    .map(({ what, extended: _extended, ...c }) => ({
      kind: 'safety',
      ...c,
      title: `faithful bucket model, ${c.kind ?? 'safety'}: ${what}`,
      model: 'buckets.pml',
      hashBits: 25,
      expect: { pass: true },
    }));
  for (const v of BUCKET_VARIANTS) {
    checks.push({
      id: `bucket-bug-${v.id}`,
      model: 'buckets.pml',
      kind: 'safety',
      defines: { ...bsmall, ...v.defines, [v.id]: 1 },
      expect: { fails: v.fails },
      // Two faults (a lease's TTL runs out, a reply is lost) are too many for a breadth-first search here: a
      // depth-first one finds a longer counterexample at once.
      shortest: !v.depthFirst,
      hashBits: v.depthFirst ? 24 : 22,
      title: v.title,
    });
  }
  return checks;
}

/** Sizes of the semaphore model: processes, limit, permits each process wants, faults in total. */
const ssize = (nw, limit, jobs, faults) => ({ NW: nw, LIMIT: limit, JOBS: jobs, FAULTS: faults });
const ssmall = ssize(2, 1, 1, 2);

/** Planted bugs of the semaphore model (spec/semaphore.pml): each must produce a counterexample. */
export const SEMAPHORE_VARIANTS = [
  {
    id: 'RELEASE_NO_OWNER',
    fails: 'limit_bound',
    defines: { OFF_one_holder: 1 },
    title:
      'a permit’s release without the owner check: a stale release frees a slot its new holder trusts (one_holder, off here, fails first)',
  },
  {
    id: 'GRANT_HELD',
    fails: 'limit_bound',
    defines: { OFF_one_holder: 1 },
    title: 'the lock service grants a slot whose lease is still valid (one_holder, off here, fails first)',
  },
  {
    id: 'SLOT_BEYOND_LIMIT',
    fails: 'limit_bound',
    title: 'tryAcquire scans `slot <= limit`: slot `limit` is a permit too',
  },
  {
    id: 'RENEW_AFTER_EXPIRY',
    fails: 'limit_bound',
    defines: { OFF_one_holder: 1 },
    title: 'a renewal after the service expired the slot’s lease extends it anyway',
  },
  {
    id: 'HANDOVER_SAME_FENCE',
    fails: 'effect_fenced',
    defines: { OFF_fences_rise: 1, OFF_one_holder: 1, OFF_limit_bound: 1 },
    title:
      'a slot granted again keeps its fence: the stale holder’s write passes as the new holder’s (fences_rise, one_holder and limit_bound, off here, fail first)',
  },
  {
    id: 'UNFENCED_WRITE',
    fails: 'effect_fenced',
    title: 'the resource ignores the permit’s fence',
  },
  {
    id: 'WRITE_CHECK_THEN_ACT',
    fails: 'effect_fenced',
    title: 'the resource checks the fence and stores the write in two steps (no conditional write)',
  },
  {
    id: 'WAIT_FOR_CHANGE',
    fails: 'finished',
    kind: 'liveness',
    title:
      'acquire, refused everywhere, waits for the next grant of a slot even when one is free by then: nobody grants one, it waits forever',
  },
];

/** The semaphore model's checks: faithful sizes, the limit-mismatch finding, planted bugs, broken locks. */
export function semaphoreChecks(extended = false) {
  const checks = [
    { id: 'sem-w3-l2-j1-f1', defines: ssize(3, 2, 1, 1), what: 'three processes, limit 2 (slot scans)' },
    { id: 'sem-w3-l1-j1-f2', defines: ssize(3, 1, 1, 2), what: 'a stale holder, a successor, a third' },
    { id: 'sem-w2-l1-j2-f3', defines: ssize(2, 1, 2, 3), what: 'two permits each, three faults' },
    {
      id: 'sem-mixed-w3-l1-f1',
      defines: { ...ssize(3, 1, 1, 1), MIXED: 1, BOUND_LARGEST: 1, OFF_no_refusal: 1 },
      what: 'limits 1 and 2 on one name: bounded by the largest',
    },
    {
      id: 'sem-live-w2-l1-j2-f1',
      kind: 'liveness',
      defines: ssize(2, 1, 2, 1),
      what: 'every process served',
    },
    {
      id: 'sem-live-w3-l1-j1-f1',
      kind: 'liveness',
      defines: ssize(3, 1, 1, 1),
      what: 'three processes served',
    },
    {
      id: 'sem-w2-l2-j2-f2',
      defines: ssize(2, 2, 2, 2),
      what: 'limit 2, two permits each, two faults',
      extended: true,
    },
    {
      id: 'sem-live-w3-l2-j1-f1',
      kind: 'liveness',
      defines: ssize(3, 2, 1, 1),
      what: 'three processes, limit 2, served',
      extended: true,
    },
  ]
    .filter((c) => !c.extended || extended)
    .map(({ what, extended: _extended, ...c }) => ({
      kind: 'safety',
      ...c,
      title: `faithful semaphore model, ${c.kind ?? 'safety'}: ${what}`,
      model: 'semaphore.pml',
      hashBits: 24,
      expect: { pass: true },
    }));
  // The finding: with limits 1 and 2 on one name, two permits are valid at once with no fault at all, and the
  // mismatch check refuses only once the smaller limit's process finds every slot of its own held.
  checks.push(
    {
      id: 'sem-finding-mixed-limits',
      model: 'semaphore.pml',
      kind: 'safety',
      defines: { ...ssize(2, 1, 1, 0), MIXED: 1, OFF_no_refusal: 1 },
      expect: { fails: 'limit_bound' },
      shortest: true,
      hashBits: 22,
      title: 'limits 1 and 2 on one name, no faults: two permits valid while one process’s limit is 1',
    },
    {
      id: 'sem-finding-mixed-refused',
      model: 'semaphore.pml',
      kind: 'safety',
      defines: { ...ssize(2, 1, 1, 0), MIXED: 1, OFF_limit_bound: 1 },
      expect: { fails: 'no_refusal' },
      shortest: true,
      hashBits: 22,
      title:
        'limits 1 and 2 on one name: the process with limit 1 that finds slot 0 held refuses (CONFIG_INVALID)',
    },
  );
  for (const v of SEMAPHORE_VARIANTS) {
    const kind = v.kind ?? 'safety';
    checks.push({
      id: `sem-bug-${v.id}`,
      model: 'semaphore.pml',
      kind,
      defines: { ...ssmall, ...v.defines, [v.id]: 1, ...(kind === 'liveness' ? { NOBOUNDCHECK: 1 } : {}) },
      expect: { fails: v.fails },
      shortest: kind === 'safety',
      hashBits: 22,
      title: v.title,
    });
  }
  // With the slot locks broken (one_holder and limit_bound off), the fences alone keep the resource safe.
  for (const id of ['RELEASE_NO_OWNER', 'GRANT_HELD', 'RENEW_AFTER_EXPIRY']) {
    checks.push({
      id: `sem-fenced-despite-${id}`,
      model: 'semaphore.pml',
      kind: 'safety',
      defines: { ...ssmall, [id]: 1, OFF_one_holder: 1, OFF_limit_bound: 1 },
      expect: { pass: true },
      hashBits: 24,
      title: `${SEMAPHORE_VARIANTS.find((v) => v.id === id)?.title}: effect_fenced still holds`,
    });
  }
  return checks;
}

/** All checks, in the order they run. */
export function allChecks(extended) {
  /** @type {Check[]} */
  const checks = [
    { id: 'faithful-w2-t1-a2-f3', kind: 'safety', defines: size(2, 1, 2, 3), hashBits: 26 },
    { id: 'faithful-w3-t1-a2-f2', kind: 'safety', defines: size(3, 1, 2, 2), hashBits: 26 },
    { id: 'faithful-w2-t2-a2-f1', kind: 'safety', defines: size(2, 2, 2, 1), hashBits: 26 },
    { id: 'faithful-w2-t1-a3-f2', kind: 'safety', defines: size(2, 1, 3, 2), hashBits: 24 },
    { id: 'live-w2-t1-a2-f2', kind: 'liveness', defines: size(2, 1, 2, 2), hashBits: 24 },
    { id: 'live-w3-t1-a2-f1', kind: 'liveness', defines: size(3, 1, 2, 1), hashBits: 24 },
    { id: 'live-w2-t2-a2-f1', kind: 'liveness', defines: size(2, 2, 2, 1), hashBits: 26 },
  ].map((c) => ({ ...c, expect: { pass: true }, title: `faithful model, ${c.kind}` }));

  for (const v of VARIANTS) {
    const kind = v.kind ?? 'safety';
    checks.push({
      id: `bug-${v.id}`,
      kind,
      defines: { ...small, [v.id]: 1, ...(kind === 'liveness' ? { NOBOUNDCHECK: 1 } : {}) },
      expect: { fails: v.fails },
      shortest: kind === 'safety',
      hashBits: 22,
      title: v.title,
    });
  }

  // With the lock broken (one_holder off), the fences alone keep every other property.
  for (const id of ['EXPIRE_EARLY', 'RELEASE_NO_OWNER', 'RENEW_AFTER_EXPIRY']) {
    checks.push({
      id: `fenced-despite-${id}`,
      kind: 'safety',
      defines: { ...small, [id]: 1, OFF_one_holder: 1 },
      expect: { pass: true },
      hashBits: 24,
      title: `${VARIANTS.find((v) => v.id === id)?.title}: every property but one_holder still holds`,
    });
  }
  checks.push({
    id: 'no-lock-delay',
    kind: 'safety',
    defines: { ...small, NO_LOCK_DELAY: 1 },
    expect: { pass: true },
    hashBits: 24,
    title: 'without lock-delay every property still holds (lock-delay only saves duplicate work)',
  });

  // A finding: the fail path's lost-reply re-read can report a stale write for a fail that applied.
  checks.push({
    id: 'finding-fail-report',
    kind: 'safety',
    defines: { ...small, CHECK_FAIL_REPORT: 1 },
    expect: { fails: 'fail_report_exact' },
    shortest: true,
    hashBits: 22,
    title:
      'a fail whose reply was lost, re-read after another worker re-claimed the task, is reported as stale',
  });
  checks.push(...bucketChecks(extended));
  checks.push(...semaphoreChecks(extended));
  return checks;
}
