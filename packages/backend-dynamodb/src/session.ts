import {
  AbstractLockSession,
  type Acquisition,
  type Clock,
  KeepAlive,
  LeaseLostError,
  type LockHolder,
  type ManagedLease,
  SessionLostError,
  type TryAcquireOptions,
  type WaitingLine,
  type WatchOptions,
} from '@baton/core';
import { BACKEND } from './errors.js';
import { type DynamoLeaseState, GrantAttempt, type GrantContext } from './grant-attempt.js';
import type { KnownKeys } from './known-keys.js';
import { type DynamoPlace, dynamoLine, refreshPlace } from './line.js';
import type { ObservationBook } from './observations.js';
import { epochSpan, FENCE_SPAN, type LockRecord } from './record.js';
import type { CallLimits } from './requester.js';
import type { LockTable } from './table.js';
import type { VersionedWrite } from './versions.js';

export type { DynamoLeaseState } from './grant-attempt.js';

/** What a session needs from its provider. */
export interface DynamoSessionDeps {
  table: LockTable;
  clock: Clock;
  observations: ObservationBook;
  /** Keys whose item this provider has seen exist (`epoch` mode starts other keys by creating the item). */
  knownKeys: KnownKeys;
  /** Observations of waiters' place versions (lines of waiters). */
  placeObservations: ObservationBook;
  /** How long a record version must stay unchanged before its holder is presumed gone. */
  expiryWaitMs(record: LockRecord): number;
  /** The same for a waiter's place advertising `leaseMs`. */
  placeExpiryMs(leaseMs: number): number;
  watch(key: string, options: WatchOptions): AsyncIterable<LockHolder | null>;
  heartbeatConcurrency: number;
}

/** Constructor arguments of {@link DynamoLockSession}. */
export interface DynamoSessionInit {
  id: string;
  name: string | undefined;
  ttlMs: number;
  lockDelayMs: number;
  intervalMs: number;
  /** Monotonic time the session's first request was sent. */
  startedAt: number;
}

type OwnedOutcome = { applied: true } | { applied: false; record: LockRecord | null };

/**
 * A DynamoDB session: an owner id plus one heartbeat loop that renews every lease the session holds.
 *
 * Each lease is trusted until its lease duration has passed since the *start* of its last write that is known
 * to have applied (acquire, heartbeat, publish), measured on this process's monotonic clock; a heartbeat
 * whose condition fails ends the lease at once. The session itself is lost when no heartbeat succeeded for a
 * lease duration (with no lease held, the heartbeat is a one-item read, so an unreachable table is noticed).
 */
export class DynamoLockSession extends AbstractLockSession<DynamoLeaseState> {
  /** Session name, stored with each lock this session takes. */
  readonly name: string | undefined;
  /** Extra wait contenders add after this session's lease before taking its keys. */
  readonly lockDelayMs: number;
  /** Heartbeat period. */
  readonly intervalMs: number;
  readonly #deps: DynamoSessionDeps;
  readonly #keepAlive: KeepAlive;
  readonly #grants: GrantContext;
  readonly #places = new Set<DynamoPlace>();
  readonly #line: WaitingLine<DynamoPlace, DynamoLeaseState>;

  constructor(deps: DynamoSessionDeps, init: DynamoSessionInit) {
    super({ id: init.id, ttlMs: init.ttlMs, clock: deps.clock, watch: deps.watch, nativeWatch: false });
    this.#deps = deps;
    this.name = init.name;
    this.lockDelayMs = init.lockDelayMs;
    this.intervalMs = init.intervalMs;
    this.#grants = {
      table: deps.table,
      clock: deps.clock,
      observations: deps.observations,
      knownKeys: deps.knownKeys,
      owner: { id: init.id, name: init.name, ttlMs: init.ttlMs, lockDelayMs: init.lockDelayMs },
      takeoverWaitMs: (record) => this.#takeoverWaitMs(record),
      limits: () => this.#limits(),
    };
    this.#line = dynamoLine({
      ...this.#grants,
      placeObservations: deps.placeObservations,
      placeExpiryMs: (leaseMs) => deps.placeExpiryMs(leaseMs),
      places: this.#places,
    });
    this.#keepAlive = new KeepAlive({
      ttlMs: init.ttlMs,
      intervalMs: init.intervalMs,
      startedAt: init.startedAt,
      clock: deps.clock,
      renew: (signal) => this.#heartbeat(signal),
      onLost: (error) => this.markSessionLost(error),
    }).start();
  }

  /**
   * Test hook: behave like a crashed process. Heartbeats stop and nothing is released; contenders take the
   * keys once they have seen the records unchanged for a lease duration (plus margin and lock-delay).
   */
  abandon(): void {
    this.#keepAlive.stop();
    this.haltWaiting();
  }

  protected override waitingLine(): WaitingLine<DynamoPlace, DynamoLeaseState> {
    return this.#line;
  }

  /** Sends the next heartbeat now instead of at its scheduled time. */
  heartbeatNow(): void {
    this.#keepAlive.renewNow();
  }

  protected async acquireOnce(
    key: string,
    options: TryAcquireOptions,
  ): Promise<Acquisition<DynamoLeaseState> | null> {
    const { table, clock, observations } = this.#deps;
    const attempt = new GrantAttempt(this.#grants, key, options.value, 'barge');
    // Unless this key was just seen held, assume it is free: one conditional request.
    if (!observations.has(key)) {
      const acquisition = await attempt.assumeFree();
      if (acquisition) return acquisition;
    }
    for (let round = 0; round < 3; round++) {
      const record = await table.read(key, this.#limits());
      const decision = await attempt.decide(record, clock.monotonicNow());
      if (decision === 'held') return null;
      if (decision !== 'retry') return decision;
    }
    return null;
  }

  /** Budget of one request: retried within the session's lease duration. */
  #limits(signal?: AbortSignal): CallLimits {
    return { deadline: this.clock.monotonicNow() + this.ttlMs, signal };
  }

  protected async releaseOnce(lease: ManagedLease<DynamoLeaseState>): Promise<boolean> {
    const state = lease.state;
    state.releasing = true;
    this.#clearDeadline(state);
    const start = this.clock.monotonicNow();
    const holdMs =
      lease.lockAtLeastForMs > 0
        ? Math.max(0, Math.ceil(lease.acquiredAt + lease.lockAtLeastForMs - start))
        : 0;
    if (holdMs === 0 && this.#deps.table.fenceMode === 'epoch') {
      const deleted = await this.#deleteReleased(lease);
      if (deleted !== 'kept') return deleted;
    }
    const outcome = await this.#writeOwned(
      'release',
      lease,
      (write, limits) => this.#deps.table.release(lease.key, this.#owned(write), holdMs, limits),
      () => this.#limits(),
    );
    return outcome.applied;
  }

  /**
   * Epoch mode: releases by deleting the item, unless someone waits in its line (`kept`: release as usual).
   * When the condition fails, one consistent read tells the cases apart. While the lease is still within its
   * time nobody can have taken the key over, so a missing item, or one of another incarnation (another fence
   * span), means this very delete was applied although its answer was lost.
   */
  async #deleteReleased(lease: ManagedLease<DynamoLeaseState>): Promise<boolean | 'kept'> {
    const { table } = this.#deps;
    const versions = lease.state.versions;
    const owned = { owner: this.id, versions: versions.begin().condition };
    if (await table.deleteReleased(lease.key, owned, this.#limits())) {
      this.#deps.knownKeys.forget(lease.key);
      return true;
    }
    const record = await table.read(lease.key, this.#limits());
    if (record?.owner === this.id && versions.has(record.rvn)) return 'kept';
    this.#deps.knownKeys.forget(lease.key);
    const inTime = this.clock.monotonicNow() < lease.state.lastGoodStart + this.ttlMs;
    return inTime && (!record || record.fenceMax !== spanOf(lease.fence).max);
  }

  protected async publishOnce(lease: ManagedLease<DynamoLeaseState>, value: string): Promise<void> {
    const start = this.clock.monotonicNow();
    const outcome = await this.#writeOwned(
      'publish',
      lease,
      (write, limits) => this.#deps.table.publish(lease.key, this.#owned(write), value, limits),
      () => this.#limits(lease.signal),
    );
    if (outcome.applied) {
      this.#renewed(lease, start);
      return;
    }
    const error = this.#lostError(lease, outcome.record);
    lease.markLost(error);
    throw error;
  }

  protected override onLeaseAcquired(lease: ManagedLease<DynamoLeaseState>): void {
    this.#armDeadline(lease);
  }

  protected override onLeaseEnded(lease: ManagedLease<DynamoLeaseState>): void {
    this.#clearDeadline(lease.state);
  }

  protected async endSession(): Promise<void> {
    this.#keepAlive.stop();
    this.#places.clear();
    for (const lease of this.leases()) this.#clearDeadline(lease.state);
  }

  /**
   * One heartbeat round: renew every held lease (bounded concurrency), or probe the table when there is
   * nothing to renew. Resolves when DynamoDB answered at least once; rejects (so the keep-alive retries
   * with backoff) when every request failed.
   */
  async #heartbeat(signal: AbortSignal): Promise<void> {
    const leases = this.leases().filter((lease) => !lease.state.releasing);
    const places = [...this.#places];
    const deadline = this.clock.monotonicNow() + this.ttlMs;
    const targets: Array<() => Promise<boolean>> = [
      ...leases.map((lease) => () => this.#renew(lease, signal)),
      ...places.map((place) => async () => {
        await refreshPlace(this.#deps, place, { signal, deadline });
        return true;
      }),
    ];
    const results = await mapSettled(targets, this.#deps.heartbeatConcurrency, (target) => target());
    if (results.some((r) => r.status === 'fulfilled' && r.value)) return;
    const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failure) throw failure.reason;
    await this.#deps.table.probe(this.#limits(signal));
  }

  /**
   * Renews one lease. Resolves `true` once DynamoDB answered (renewed, or the lease turned out lost),
   * `false` when nothing was sent; rejects on transport failure.
   */
  async #renew(lease: ManagedLease<DynamoLeaseState>, roundSignal: AbortSignal): Promise<boolean> {
    const start = this.clock.monotonicNow();
    const deadline = lease.state.lastGoodStart + this.ttlMs;
    if (start >= deadline) {
      this.#expire(lease);
      return false;
    }
    const signal = AbortSignal.any([roundSignal, lease.signal]);
    let outcome: OwnedOutcome;
    try {
      outcome = await this.#writeOwned(
        'renew',
        lease,
        (write, limits) =>
          this.#deps.table.renew(
            lease.key,
            this.#owned(write),
            { leaseMs: this.ttlMs, delayMs: this.lockDelayMs },
            limits,
          ),
        () => ({ signal, deadline }),
      );
    } catch (error) {
      if (!lease.held || lease.state.releasing) return false; // the lease ended while renewing
      throw error;
    }
    if (outcome.applied) this.#renewed(lease, start);
    else if (lease.held && !lease.state.releasing) lease.markLost(this.#lostError(lease, outcome.record));
    return true;
  }

  /**
   * A conditional write on a held lease. When the condition fails, one consistent read tells the cases
   * apart: this very write was applied by an earlier attempt; another of our own writes got in between (try
   * again); or someone else changed the item (the lease is gone).
   */
  async #writeOwned(
    kind: 'renew' | 'publish' | 'release',
    lease: ManagedLease<DynamoLeaseState>,
    send: (write: VersionedWrite, limits: CallLimits) => Promise<boolean>,
    limits: () => CallLimits,
  ): Promise<OwnedOutcome> {
    const versions = lease.state.versions;
    let record: LockRecord | null = null;
    for (let attempt = 0; attempt < 3; attempt++) {
      const write = versions.begin();
      if (await send(write, limits())) {
        versions.confirm(write);
        return { applied: true };
      }
      // A heartbeat or publish that lost the race against our own release: nothing to find out.
      if (kind !== 'release' && lease.state.releasing) return { applied: false, record: null };
      record = await this.#deps.table.read(lease.key, limits());
      if (record?.rvn === write.rvn) {
        versions.confirm(write);
        return { applied: true };
      }
      if (!record || record.owner !== this.id || !versions.has(record.rvn)) break;
    }
    return { applied: false, record };
  }

  #owned(write: VersionedWrite): { owner: string; versions: readonly string[]; rvn: string } {
    return { owner: this.id, versions: write.condition, rvn: write.rvn };
  }

  /** How long a contender must see `record` unchanged before taking it. */
  #takeoverWaitMs(record: LockRecord): number {
    if (record.owner === undefined) return record.holdMs;
    return this.#deps.expiryWaitMs(record) + record.delayMs;
  }

  #renewed(lease: ManagedLease<DynamoLeaseState>, start: number): void {
    const state = lease.state;
    if (!lease.held || state.releasing) return;
    if (start > state.lastGoodStart) state.lastGoodStart = start;
    this.#armDeadline(lease);
  }

  #armDeadline(lease: ManagedLease<DynamoLeaseState>): void {
    const state = lease.state;
    this.#clearDeadline(state);
    const delay = state.lastGoodStart + this.ttlMs - this.clock.monotonicNow();
    state.deadlineTimer = this.clock.setTimeout(() => {
      state.deadlineTimer = undefined;
      if (this.clock.monotonicNow() >= state.lastGoodStart + this.ttlMs) this.#expire(lease);
      else this.#armDeadline(lease);
    }, delay);
  }

  #clearDeadline(state: DynamoLeaseState): void {
    if (state.deadlineTimer !== undefined) this.clock.clearTimeout(state.deadlineTimer);
    state.deadlineTimer = undefined;
  }

  /** The lease's time is up. If no heartbeat at all got through for as long, the whole session is lost. */
  #expire(lease: ManagedLease<DynamoLeaseState>): void {
    if (!lease.held || lease.state.releasing) return;
    if (this.clock.monotonicNow() >= this.#keepAlive.deadline) {
      this.#keepAlive.stop();
      this.markSessionLost(
        new SessionLostError(
          `session ${this.id}: no heartbeat succeeded within the lease duration (${this.ttlMs} ms)`,
          { backend: BACKEND },
        ),
      );
      return;
    }
    lease.markLost(
      new LeaseLostError(
        `lease '${lease.key}' was not renewed within its lease duration (${this.ttlMs} ms); others may take it`,
        { backend: BACKEND },
      ),
    );
  }

  #lostError(lease: ManagedLease<DynamoLeaseState>, record: LockRecord | null): LeaseLostError {
    const what = !record
      ? 'its lock item was deleted'
      : record.owner === undefined
        ? 'it was released by someone else (force-release)'
        : record.owner === this.id
          ? 'its record changed unexpectedly'
          : `session ${record.owner} took it over`;
    return new LeaseLostError(`lease '${lease.key}' is no longer held: ${what}`, { backend: BACKEND });
  }
}

/** Runs `fn` over `items` with at most `limit` in flight; settles every one. */
async function mapSettled<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<PromiseSettledResult<R>[]> {
  const results: PromiseSettledResult<R>[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) {
      try {
        results[i] = { status: 'fulfilled', value: await fn(items[i]!) };
      } catch (reason) {
        results[i] = { status: 'rejected', reason };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** The fence span (epoch mode) a fence belongs to. */
function spanOf(fence: number): { first: number; max: number } {
  return epochSpan(Math.max(1, Math.floor(fence / FENCE_SPAN)));
}
