import { backoffDelay } from '../../backoff.js';
import type { BucketClaimResult, Settlement } from '../../bucket-source.js';
import { type BucketLeaseRef, type BucketTaskSource, bucketOfShard } from '../../bucket-source.js';
import { sleep } from '../../clock.js';
import { BatonError, isBatonError, LeaseLostError, UnavailableError } from '../../errors.js';
import type { LeaseLayout } from '../../lease-layout.js';
import type { Lease, LockSession } from '../../lock.js';
import type { Permit } from '../../semaphore/types.js';
import type { Task } from '../../task-source.js';
import type { WorkerEnv } from '../env.js';
import { LazyAbort } from '../lazy-abort.js';
import { givePermit } from '../limits.js';
import { observeWrite, type PlannedWrite, planWrite, type WriteResult } from '../outcome.js';
import { runHandler } from '../run-handler.js';
import { BucketKeys } from './keys.js';
import { type Member, planBalance } from './plan.js';
import { SettleBatcher, type SettleOutcome } from './settle-batcher.js';
import { Wakeup } from './wakeup.js';

/** Bucket leases a balancing round tries to take at once. */
const ACQUIRE_LANES = 8;

/**
 * Buckets one claim may take tasks from (with a source that has `claimBuckets`). The source serves them in
 * order until the limit is reached, but fences every one of them (a row write each in PostgreSQL): eight
 * cover a claim unless the buckets are nearly empty, and those come back drained and drop out.
 */
const CLAIM_LEASES = 8;

/** Why the bucket dispatcher returned. */
export type BucketRunOutcome = 'stopped' | 'session-lost' | 'drained' | 'layout-changed';

/** A bucket this worker holds the lease of. */
interface HeldBucket {
  readonly bucket: number;
  readonly lease: Lease;
  readonly ref: BucketLeaseRef;
  readonly lockKey: string;
  /** Claimed under this lease, not started yet. */
  readonly queue: Task[];
  /** It may hold due tasks: claim from it. Cleared when a claim comes back short. */
  due: boolean;
  /** `active`: claiming; `releasing`: handing back (no more claims); `lost`: the lease is gone. */
  state: 'active' | 'releasing' | 'lost';
}

/**
 * Bucket mode: the worker leases whole buckets of tasks (ranges of the source's shards) instead of single
 * tasks, claims many due tasks of a bucket in one fenced statement and writes their outcomes in batches.
 *
 * Three loops share the held buckets:
 * - **balancing** (every `balanceIntervalMs`): one `list()` of the buckets' keys shows the live workers (a
 *   membership key each) and who holds which bucket; {@link planBalance} says how many this worker should
 *   hold; it takes free buckets up to that and hands back any excess, gracefully (its running tasks finish
 *   and their outcomes are written first). A crashed worker's buckets become free when its leases expire.
 * - **claiming**: from buckets that may hold due tasks (marked by a `dueBuckets` poll each schedule tick, a
 *   wake-up from the source, or a claim that came back full), up to the free handler slots plus `prefetch`.
 * - **running**: each claimed task's handler under the bucket lease's signal; its outcome goes to the
 *   bucket's {@link SettleBatcher}.
 */
export class BucketDispatcher {
  readonly #env: WorkerEnv;
  readonly #session: LockSession;
  readonly #source: BucketTaskSource;
  readonly #layout: LeaseLayout;
  readonly #buckets: number;
  readonly #keys: BucketKeys;
  readonly #once: boolean;
  readonly #held = new Map<number, HeldBucket>();
  readonly #releases = new Set<Promise<void>>();
  readonly #wakeup = new Wakeup();
  readonly #batcher: SettleBatcher;
  readonly #done = new AbortController();
  #checkAll = true;
  #balancedOnce = false;
  #nothingToTake = false;
  /** Buckets this worker's last balancing round tried to take and was refused. */
  #refused = new Set<number>();
  #cursor = 0;
  #outcome: BucketRunOutcome | undefined;
  #member: Lease | undefined;

  constructor(
    env: WorkerEnv,
    session: LockSession,
    source: BucketTaskSource,
    layout: LeaseLayout,
    once: boolean,
  ) {
    this.#env = env;
    this.#session = session;
    this.#source = source;
    this.#layout = layout;
    this.#buckets = layout.buckets ?? 1;
    this.#keys = new BucketKeys(env.options.buckets.keyPrefix, source.namespace, this.#buckets);
    this.#once = once;
    this.#batcher = new SettleBatcher(env, source, env.options.buckets.batchSize);
  }

  /** Runs until the worker stops, the session is lost, the layout changes, or (once) every bucket is drained. */
  async run(): Promise<BucketRunOutcome> {
    const wake = () => this.#wakeup.wake();
    const onEnd = () => {
      this.#done.abort();
      wake();
    };
    // A lost session takes every lease with it, now: the worker destroys it (releasing the leases in the
    // background), so the leases' own signals may end later, and as releases.
    const onSessionLost = () => {
      for (const held of [...this.#held.values()]) this.#lost(held, this.#session.signal.reason);
      onEnd();
    };
    this.#env.stopSignal.addEventListener('abort', onEnd, { once: true });
    this.#session.signal.addEventListener('abort', onSessionLost, { once: true });
    if (this.#env.stopSignal.aborted) onEnd();
    if (this.#session.signal.aborted) onSessionLost();
    let unsubscribe: (() => void) | undefined;
    const loops: Promise<void>[] = [];
    try {
      await this.#join();
      unsubscribe = this.#source.onDue?.((shard) => this.#onDue(shard));
      loops.push(this.#tickLoop(), this.#balanceLoop());
      await this.#claimLoop();
    } finally {
      this.#done.abort();
      wake();
      unsubscribe?.();
      await Promise.all(loops);
      if (!this.#session.signal.aborted) {
        for (const held of [...this.#held.values()]) this.#release(held, 'stop');
      }
      await Promise.all(this.#releases);
      this.#env.stopSignal.removeEventListener('abort', onEnd);
      this.#session.signal.removeEventListener('abort', onSessionLost);
      if (!this.#session.signal.aborted) {
        await this.#member
          ?.release()
          .catch((error: unknown) => this.#env.observe({ type: 'error', error, phase: 'release' }));
      }
    }
    return this.#outcome ?? (this.#session.signal.aborted ? 'session-lost' : 'stopped');
  }

  /** The claiming loop: claims due tasks of held buckets and starts their handlers. */
  async #claimLoop(): Promise<void> {
    const { options } = this.#env;
    let failures = 0;
    while (!this.#ended()) {
      this.#startQueued();
      if (this.#once && this.#drained()) {
        this.#outcome = 'drained';
        return;
      }
      const wait = this.#wakeup.next();
      const due = this.#dueInTurn();
      const room = options.buckets.prefetch + this.#env.handlerSlots.free - this.#queued();
      if (due.length === 0 && this.#checkAll && this.#active().length > 0) {
        this.#checkAll = false;
        try {
          const dueNow = await this.#source.dueBuckets(
            this.#layout,
            this.#active().map((b) => b.bucket),
          );
          for (const n of dueNow) {
            const held = this.#held.get(n);
            if (held) held.due = true;
          }
          failures = 0;
        } catch (error) {
          this.#env.observe({ type: 'error', error, phase: 'buckets' });
          this.#checkAll = true;
          await this.#pause(failures++);
        }
        continue;
      }
      if (due.length === 0 || room < this.#smallestClaim()) {
        await wait;
        continue;
      }
      const limit = Math.min(options.buckets.batchSize, room);
      let claims: Array<[HeldBucket, BucketClaimResult]>;
      try {
        claims = await this.#claim(due, limit);
        failures = 0;
      } catch (error) {
        this.#env.observe({ type: 'error', error, phase: 'buckets' });
        await this.#pause(failures++);
        continue;
      }
      if (!(await this.#adoptClaims(claims, limit))) return;
    }
  }

  /**
   * Claims up to `limit` tasks from `due` (in turn order): with one `claimBuckets` call across all of them
   * where the source has it, else with `claimBucket` from the first.
   */
  async #claim(due: readonly HeldBucket[], limit: number): Promise<Array<[HeldBucket, BucketClaimResult]>> {
    const skipKinds = this.#env.limits.fullKinds();
    const options = skipKinds.length > 0 ? { skipKinds } : undefined;
    const { id } = this.#env.options;
    if (this.#source.claimBuckets && due.length > 1) {
      const results = await this.#source.claimBuckets(
        due.map((held) => held.ref),
        id,
        limit,
        options,
      );
      if (!Array.isArray(results) || results.length !== due.length) {
        throw new BatonError(
          'PROTOCOL',
          `claimBuckets() returned ${Array.isArray(results) ? results.length : 'no'} results for ${due.length} leases`,
        );
      }
      return due.map((held, i) => [held, results[i]!]);
    }
    const first = due[0]!;
    return [[first, await this.#source.claimBucket(first.ref, id, limit, options)]];
  }

  /**
   * Queues what a claim took, bucket by bucket. A bucket whose claim came back short of the limit left to it
   * (the source serves the buckets in order) has nothing more due; a stale lease means the bucket was lost;
   * claims for a bucket handed back or lost meanwhile are given back unrun. False when the layout changed (the
   * dispatcher ends).
   */
  async #adoptClaims(
    claims: ReadonlyArray<[HeldBucket, BucketClaimResult]>,
    limit: number,
  ): Promise<boolean> {
    let claimed = 0;
    for (const [, result] of claims) if (result.ok) claimed += result.tasks.length;
    this.#env.observe({ type: 'claim-batch', claimed });
    let left = limit;
    const givenBack: Promise<void>[] = [];
    for (const [bucket, result] of claims) {
      if (!result.ok) {
        if (result.reason === 'layout') {
          this.#outcome = 'layout-changed';
          this.#env.layoutChanged();
          return false;
        }
        this.#lost(
          bucket,
          new LeaseLostError(`a newer lease of bucket ${bucket.bucket} has written to the source`),
        );
        continue;
      }
      const taken = result.tasks.length + result.buried;
      if (bucket.state !== 'active') {
        // Handed back or lost while the claim ran: give the tasks back unrun.
        givenBack.push(
          this.#settleAll(
            bucket,
            result.tasks.map((task) => releaseOf(task)),
          ),
        );
      } else {
        bucket.queue.push(...result.tasks);
        if (taken < left) bucket.due = false;
      }
      left = Math.max(0, left - taken);
    }
    await Promise.all(givenBack);
    return true;
  }

  /**
   * The fewest tasks worth a claim statement. A free handler slot (nothing is queued for it) is filled at
   * once; while every slot is busy, the claimed-ahead queue is topped up only once half the prefetch has
   * drained, so claims come in batches instead of one small claim per finished handler.
   */
  #smallestClaim(): number {
    if (this.#env.handlerSlots.free > 0) return 1;
    return Math.max(1, Math.ceil(this.#env.options.buckets.prefetch / 2));
  }

  /** Starts handlers for claimed tasks while handler slots are free, taking buckets in turn. */
  #startQueued(): void {
    const { handlerSlots } = this.#env;
    while (handlerSlots.free > 0 && !this.#env.stopSignal.aborted) {
      const bucket = this.#withQueued();
      if (!bucket) return;
      const task = bucket.queue.shift()!;
      handlerSlots.takeFree(1);
      this.#startTask(bucket, task);
    }
  }

  #startTask(bucket: HeldBucket, task: Task): void {
    const env = this.#env;
    const fence = task.fence!;
    const controller = new LazyAbort();
    const startedAt = env.options.clock.monotonicNow();
    const done = (async () => {
      const permit = await this.#permitFor(bucket, task);
      if (permit === 'skipped') return;
      let planned: PlannedWrite;
      try {
        const result = await runHandler(env, {
          task,
          fence,
          lockKey: bucket.lockKey,
          // A lost permit ends the handler as a lost lease does: it may no longer count on the kind's limit.
          leaseSignal: permit ? AbortSignal.any([bucket.lease.signal, permit.signal]) : bucket.lease.signal,
          controller,
          permit,
        });
        planned = planWrite(result);
      } finally {
        env.handlerSlots.give();
        this.#wakeup.wake();
      }
      try {
        const settlement: Settlement =
          planned.kind === 'complete'
            ? { taskId: task.id, fence, kind: 'complete', result: planned.result }
            : { taskId: task.id, fence, kind: 'fail', failure: planned.failure };
        const outcome = await this.#batcher.settle(bucket.ref, settlement);
        observeWrite(
          env,
          task,
          fence,
          planned,
          this.#writeResult(outcome, settlement),
          env.options.clock.monotonicNow() - startedAt,
        );
      } finally {
        // Tasks of the kind given back unrun meanwhile may run now: look for them at once, not at the next tick.
        if (permit && (await givePermit(env, permit, task.id))) {
          this.#checkAll = true;
          this.#wakeup.wake();
        }
      }
    })()
      .catch((error: unknown) => env.observe({ type: 'error', error, phase: 'write', taskId: task.id }))
      // The claiming loop decides "drained" (once mode) only when nothing is in flight: tell it.
      .finally(() => queueMicrotask(() => this.#wakeup.wake()));
    env.inFlight.track(task.id, (reason) => controller.abort(reason), done, bucket.bucket, {
      kind: task.kind,
      fence,
      lockKey: bucket.lockKey,
      startedAt,
    });
  }

  /**
   * The permit a task of a limited kind runs under (`null`: its kind has no limit). A kind found full, or
   * whose semaphore failed, gets no round trip until the next tick or until this worker gives a permit of it
   * back; the task is given back unrun (attempt not counted), and claims leave the kind alone meanwhile.
   */
  async #permitFor(bucket: HeldBucket, task: Task): Promise<Permit | null | 'skipped'> {
    const { limits } = this.#env;
    if (!limits.limits(task.kind)) return null;
    if (!limits.knownFull(task.kind)) {
      try {
        const permit = await limits.take(this.#session, task.kind);
        if (permit) return permit;
      } catch (error) {
        this.#env.observe({ type: 'error', error, phase: 'buckets', taskId: task.id });
      }
    }
    this.#env.observe({ type: 'limit-skipped', taskId: task.id, kind: task.kind });
    this.#env.handlerSlots.give();
    this.#wakeup.wake();
    await this.#batcher.settle(bucket.ref, releaseOf(task));
    return 'skipped';
  }

  #writeResult(outcome: SettleOutcome, settlement: Settlement): WriteResult {
    if (outcome.applied) {
      if (outcome.status === 'done') return { kind: 'done' };
      if (outcome.status === 'dead') return { kind: 'dead' };
      if (outcome.status === 'failed' && settlement.kind === 'fail') {
        return {
          kind: 'failed',
          nextRunAt: 'nextRunAt' in outcome && outcome.nextRunAt ? outcome.nextRunAt : new Date(),
        };
      }
      return { kind: 'gave-up' };
    }
    if (outcome.reason === 'layout') {
      this.#env.layoutChanged();
      return { kind: 'layout' };
    }
    if (outcome.reason === 'unknown') return { kind: 'unknown' };
    return outcome.reason === 'gave-up' ? { kind: 'gave-up' } : { kind: 'stale' };
  }

  /**
   * Balancing rounds until the dispatcher ends; faster while this worker is below its share and getting
   * somewhere (see {@link BucketDispatcher.#balance}).
   */
  async #balanceLoop(): Promise<void> {
    const { balanceIntervalMs } = this.#env.options.buckets;
    if (!(await this.#membershipSettled())) return;
    let failures = 0;
    while (!this.#ended()) {
      let below = false;
      try {
        below = await this.#balance();
        failures = 0;
      } catch (error) {
        if (this.#ended()) return;
        this.#env.observe({ type: 'error', error, phase: 'buckets' });
        await this.#pause(failures++);
        continue;
      }
      await this.#sleep(below ? Math.max(50, balanceIntervalMs / 4) : balanceIntervalMs);
    }
  }

  /**
   * Workers started together should see each other's membership before any of them takes its share, rather
   * than the first one taking every bucket and handing most of them back a round later. Waits until two
   * lists 50 ms apart show the same members, or a quarter of the balancing interval (at most 500 ms) has
   * passed since the join. False when the dispatcher ended meanwhile.
   */
  async #membershipSettled(): Promise<boolean> {
    const { clock, locks } = this.#env.options;
    const limit = Math.min(500, this.#env.options.buckets.balanceIntervalMs / 4);
    const step = Math.min(50, limit);
    const joinedAt = clock.monotonicNow();
    let seen: string | undefined;
    for (;;) {
      if (!(await this.#sleep(step))) return false;
      if (clock.monotonicNow() - joinedAt >= limit || !locks.list) return true;
      let members: string;
      try {
        const { members: keys } = this.#keys.parse(await locks.list(this.#keys.root));
        members = [...keys.keys()].sort().join('\n');
      } catch {
        // The balancing rounds report and retry list errors.
        return !this.#ended();
      }
      if (members === seen) return true;
      seen = members;
    }
  }

  /**
   * Takes this worker's membership key: other workers count it in their balancing from then on. Held by another
   * Worker, the id is taken (a configuration error). After a lost session the key may still be this worker's
   * own: held by that session until the lock server expires it, then kept free for the lock-delay. The worker
   * waits for it, trying again every balancing interval, until it joins or the dispatcher ends.
   */
  async #join(): Promise<void> {
    const { options, instance } = this.#env;
    const key = this.#keys.member(options.id);
    const value = JSON.stringify({ id: options.id, maxBuckets: options.buckets.maxBuckets, instance });
    for (let attempt = 0; !this.#ended(); attempt++) {
      const member = await this.#session.tryAcquire(key, { value });
      if (member) {
        this.#member = member;
        return;
      }
      const holder = await options.locks.getHolder(key, { times: false });
      if (holder && memberInstance(holder.value) !== instance) {
        throw new BatonError(
          'CONFIG_INVALID',
          `another worker holds the membership key ${key} of the id '${options.id}': a live worker uses the same ` +
            'id, or a process with this id ended without leaving less than its lock TTL (plus lock-delay) ago. ' +
            'Fix: give every worker a unique id (the default is unique per process).',
        );
      }
      if (attempt === 0) {
        this.#env.observe({
          type: 'error',
          phase: 'buckets',
          error: new UnavailableError(
            `worker '${options.id}' waits for its membership key ${key}: it is still held by its own lost session, ` +
              'or in the lock-delay after it, until the lock server has expired that session',
          ),
        });
      }
      await this.#sleep(options.buckets.balanceIntervalMs);
    }
  }

  /**
   * One balancing round. Returns true (balance again soon) while this worker still holds fewer buckets than
   * its share, unless it is stuck on blocked buckets: every bucket it tried was refused, and some of them had
   * been refused in its last round too yet still look free. Those are in their lock-delay after a crashed
   * worker's session expired; trying them four times a round would multiply the lock requests of the whole
   * fleet for the length of the lock-delay (every survivor is below its share then) and take them no sooner
   * than a round. A bucket refused because another worker took it first shows as held in the next list, so
   * races at a cold start keep the quick pace.
   */
  async #balance(): Promise<boolean> {
    const { options } = this.#env;
    // Not counted by the others yet (or an operator force-released the key): join first, take nothing before.
    if (this.#member?.signal.aborted) await this.#join();
    const list = this.#env.options.locks.list;
    if (!list)
      throw new BatonError('CONFIG_INVALID', 'bucket mode needs a lock backend that can list() keys');
    const { buckets: holders, members: memberKeys } = this.#keys.parse(
      await list.call(this.#env.options.locks, this.#keys.root),
    );
    const sessionToMember = new Map<string, string>();
    for (const [id, holder] of memberKeys) sessionToMember.set(holder.sessionId, id);
    const heldBy = new Map<string, number>();
    for (const holder of holders.values()) {
      const owner = sessionToMember.get(holder.sessionId) ?? `session:${holder.sessionId}`;
      heldBy.set(owner, (heldBy.get(owner) ?? 0) + 1);
    }
    const members: Member[] = [...memberKeys.entries()].map(([id, holder]) => ({
      id,
      cap: memberCap(holder.value, this.#buckets),
      held: heldBy.get(id) ?? 0,
    }));
    const active = this.#active();
    const self: Member = { id: options.id, cap: options.buckets.maxBuckets, held: active.length };
    const free: number[] = [];
    for (let n = 0; n < this.#buckets; n++) if (!holders.has(n) && !this.#held.has(n)) free.push(n);
    const plan = planBalance(this.#buckets, members, self, free);
    const refusedBefore = this.#refused;
    this.#refused = new Set();

    if (plan.release > 0) {
      const lightest = [...active].sort(
        (a, b) => load(this.#env, a) - load(this.#env, b) || a.bucket - b.bucket,
      );
      for (const held of lightest.slice(0, plan.release)) this.#release(held, 'rebalance');
    }
    const taken = await this.#take(plan.acquire);
    this.#balancedOnce = true;
    // Once mode is done taking buckets when it has its share, or nothing it wants is free.
    this.#nothingToTake = self.held + taken >= plan.target || taken < plan.acquire.length;
    this.#wakeup.wake();
    const blocked = taken === 0 && plan.acquire.some((n) => refusedBefore.has(n));
    return self.held + taken < plan.target && !blocked;
  }

  /**
   * Tries to take `buckets`, up to {@link ACQUIRE_LANES} at a time (a cold start takes a worker's whole share
   * in about one lock round trip per lane, not one per bucket). Returns how many it took. Throws the first
   * transport error once the other attempts in flight have ended (what they took is adopted, not leaked).
   */
  async #take(buckets: readonly number[]): Promise<number> {
    const waiting = [...buckets];
    let taken = 0;
    let failure: { error: unknown } | undefined;
    const lane = async (): Promise<void> => {
      for (let n = waiting.shift(); n !== undefined; n = waiting.shift()) {
        if (this.#ended() || failure) return;
        const lockKey = this.#keys.bucket(n);
        let lease: Lease | null;
        try {
          lease = await this.#session.tryAcquire(lockKey, { value: this.#env.options.id });
        } catch (error) {
          failure ??= { error };
          return;
        }
        if (!lease) {
          this.#refused.add(n);
          continue;
        }
        if (this.#ended()) {
          await lease.release().catch(() => undefined);
          return;
        }
        this.#adopt(n, lease, lockKey);
        taken++;
      }
    };
    await Promise.all(Array.from({ length: Math.min(ACQUIRE_LANES, buckets.length) }, lane));
    if (failure) throw failure.error;
    return taken;
  }

  #adopt(bucket: number, lease: Lease, lockKey: string): void {
    const ref: BucketLeaseRef = {
      epoch: this.#layout.epoch,
      buckets: this.#buckets,
      bucket,
      fence: lease.fence,
    };
    const held: HeldBucket = {
      bucket,
      lease,
      ref,
      lockKey,
      queue: [],
      due: true,
      state: 'active',
    };
    this.#held.set(bucket, held);
    lease.signal.addEventListener(
      'abort',
      () => {
        if (held.state === 'releasing' && isBatonError(lease.signal.reason, 'LEASE_RELEASED')) return;
        // A lost session is destroyed at once, which "releases" its leases (the requests are best effort): for
        // this worker the bucket is lost with the session, not handed back.
        const session = this.#session.signal;
        this.#lost(held, session.aborted ? session.reason : lease.signal.reason);
      },
      { once: true },
    );
    this.#env.observe({ type: 'bucket-acquired', bucket, fence: lease.fence, lockKey });
    this.#wakeup.wake();
  }

  /** The lease is gone: stop claiming, abort its handlers; queued claims go to whoever takes it next. */
  #lost(held: HeldBucket, reason: unknown): void {
    if (held.state === 'lost') return;
    held.state = 'lost';
    held.queue.length = 0;
    if (this.#held.get(held.bucket) === held) this.#held.delete(held.bucket);
    this.#env.inFlight.abort(reason, held.bucket);
    this.#env.observe({ type: 'bucket-lost', bucket: held.bucket, fence: held.ref.fence, reason });
  }

  /**
   * Hands a bucket back: no more claims, its queued tasks given back unrun, its running tasks finished and
   * every outcome written, then the lease released (so the next holder gets it at once, not at expiry).
   */
  #release(held: HeldBucket, reason: 'rebalance' | 'stop'): void {
    if (held.state !== 'active') return;
    held.state = 'releasing';
    const releasing = (async () => {
      const queued = held.queue.splice(0);
      if (queued.length > 0)
        await this.#settleAll(
          held,
          queued.map((task) => releaseOf(task)),
        );
      await this.#env.inFlight.drain(held.bucket);
      await this.#batcher.idle(held.ref);
      if (held.state !== 'releasing') return;
      try {
        await held.lease.release();
      } catch (error) {
        this.#env.observe({ type: 'error', error, phase: 'release' });
      }
      // Lost while the release was on its way (the session went): counted as lost already.
      if (held.state !== 'releasing') return;
      if (this.#held.get(held.bucket) === held) this.#held.delete(held.bucket);
      held.state = 'lost';
      this.#env.observe({ type: 'bucket-released', bucket: held.bucket, fence: held.ref.fence, reason });
      this.#wakeup.wake();
    })();
    this.#releases.add(releasing);
    void releasing.finally(() => this.#releases.delete(releasing));
  }

  async #settleAll(held: HeldBucket, settlements: readonly Settlement[]): Promise<void> {
    await Promise.all(settlements.map((s) => this.#batcher.settle(held.ref, s)));
  }

  /** Marks buckets that may hold due tasks now (a wake-up from the source). */
  #onDue(shard: number | undefined): void {
    if (shard === undefined) {
      this.#checkAll = true;
    } else {
      const held = this.#held.get(bucketOfShard(this.#source.shards, this.#buckets, shard));
      if (held) held.due = true;
    }
    this.#wakeup.wake();
  }

  /** Schedule ticks: each one polls every held bucket (`dueBuckets`) once. */
  async #tickLoop(): Promise<void> {
    const { scheduler, clock } = this.#env.options;
    let delay = scheduler.firstDelay();
    while (delay !== undefined && !this.#ended()) {
      if (!(await this.#sleep(delay))) return;
      const tickAt = clock.monotonicNow();
      this.#checkAll = true;
      // Permits other workers gave back since: try full kinds again.
      this.#env.limits.newPass();
      this.#wakeup.wake();
      delay = scheduler.nextDelay(tickAt);
    }
  }

  /**
   * The active buckets that may hold due tasks, in turn: starting after the bucket the previous claim started
   * with, at most {@link CLAIM_LEASES}.
   */
  #dueInTurn(): HeldBucket[] {
    const active = this.#active();
    const start = this.#cursor;
    const due: HeldBucket[] = [];
    for (let i = 0; i < active.length && due.length < CLAIM_LEASES; i++) {
      const held = active[(start + i) % active.length]!;
      if (!held.due) continue;
      if (due.length === 0) this.#cursor = (start + i + 1) % active.length;
      due.push(held);
    }
    return due;
  }

  #drained(): boolean {
    return (
      this.#balancedOnce &&
      this.#nothingToTake &&
      !this.#checkAll &&
      this.#releases.size === 0 &&
      this.#env.inFlight.size === 0 &&
      this.#active().every((b) => !b.due && b.queue.length === 0)
    );
  }

  /** An active bucket with claimed tasks waiting (no array built: this runs once per started task). */
  #withQueued(): HeldBucket | undefined {
    for (const held of this.#held.values()) {
      if (held.state === 'active' && held.queue.length > 0) return held;
    }
    return undefined;
  }

  #active(): HeldBucket[] {
    return [...this.#held.values()].filter((b) => b.state === 'active');
  }

  #queued(): number {
    let n = 0;
    for (const held of this.#held.values()) n += held.queue.length;
    return n;
  }

  #ended(): boolean {
    return this.#done.signal.aborted || this.#outcome !== undefined;
  }

  /** Sleeps unless the dispatcher ends first; false when it ended. */
  async #sleep(ms: number): Promise<boolean> {
    if (this.#ended()) return false;
    await sleep(ms, { clock: this.#env.options.clock, signal: this.#done.signal }).catch(() => undefined);
    return !this.#ended();
  }

  async #pause(failures: number): Promise<void> {
    const { retryBaseMs, retryMaxMs, random } = this.#env.options;
    await this.#sleep(backoffDelay(failures, { baseMs: retryBaseMs, maxMs: retryMaxMs, random }));
  }
}

function releaseOf(task: Task): Settlement {
  return { taskId: task.id, fence: task.fence!, kind: 'release' };
}

/** Work a bucket has going: claimed tasks waiting plus running ones. */
function load(env: WorkerEnv, held: HeldBucket): number {
  return held.queue.length + env.inFlight.countIn(held.bucket);
}

/** The Worker instance that wrote a membership key's value (undefined for values without one). */
function memberInstance(value: string | undefined): unknown {
  try {
    return (JSON.parse(value ?? '{}') as { instance?: unknown }).instance;
  } catch {
    return undefined;
  }
}

/** The cap a member published with its membership key (all buckets when it published none). */
function memberCap(value: string | undefined, buckets: number): number {
  try {
    const cap = (JSON.parse(value ?? '{}') as { maxBuckets?: unknown }).maxBuckets;
    return typeof cap === 'number' && Number.isInteger(cap) && cap >= 0 ? Math.min(cap, buckets) : buckets;
  } catch {
    return buckets;
  }
}
