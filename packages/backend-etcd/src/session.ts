import {
  AbstractLockSession,
  type AcquireOptions,
  type Acquisition,
  BatonError,
  backoffDelay,
  type Clock,
  KeepAlive,
  type Lease,
  LeaseLostError,
  type LockHolder,
  type ManagedLease,
  ProtocolError,
  SessionLostError,
  sleep,
  type TimerHandle,
  type TryAcquireOptions,
  type WaitingLine,
  type WatchOptions,
} from '@baton/core';
import type { ICompare, IRequestOp, ITxnResponse } from 'etcd3';
import { BACKEND } from './errors.js';
import type { EtcdKeys } from './keys.js';
import { EtcdLine, type EtcdPlace } from './line.js';
import { type EtcdRpc, revision } from './rpc.js';

/** Per-lease bookkeeping of the etcd backend. */
export interface EtcdLeaseState {
  readonly lockKey: Buffer;
  readonly guardKey: Buffer;
}

/** What an {@link EtcdSession} needs from its provider. */
export interface EtcdSessionInit {
  /** The session lease's id as etcdctl shows it (hexadecimal): the holder id others see. */
  id: string;
  /** The session lease (decimal, as the API takes it). */
  leaseId: string;
  /** The lease of this session's lock-delay guards, renewed with the session lease; none without lock-delay. */
  delayLeaseId: string | undefined;
  ttlMs: number;
  /** Monotonic time at which the lease grant was sent. */
  startedAt: number;
  rpc: EtcdRpc;
  keys: EtcdKeys;
  clock: Clock;
  watch: (key: string, options: WatchOptions) => AsyncIterable<LockHolder | null>;
  requestTimeoutMs: number;
  onError?: ((error: unknown, context: string) => void) | undefined;
}

/**
 * A key this session may still hold in etcd without a live lease: a release deferred by `lockAtLeastForMs`,
 * or an acquisition or release whose outcome is unknown after a transport failure. It is deleted, under
 * `guard`, later; until then this session does not take the key again.
 */
interface PendingKey {
  kind: 'acquiring' | 'deferred' | 'unsettled';
  lockKey: Buffer;
  guardKey: Buffer;
  /** Condition of the deletion: the acquisition's create revision, or (outcome unknown) our lease. */
  guard: ICompare;
  dueAt: number;
  timer: TimerHandle | undefined;
  running: Promise<void> | undefined;
  failures: number;
}

/**
 * One etcd session: a lease kept alive by core's {@link KeepAlive} (one keep-alive round per TTL/2 for all
 * of its locks), holding any number of lock keys attached to it, so that etcd deletes them when it expires.
 *
 * - **Acquire**: one txn: if the lock key and its lock-delay guard do not exist (`create_revision == 0`),
 *   put the lock key with the session lease (and the guard with the delay lease). The fence is the txn's
 *   revision, which is the key's `create_revision`: etcd's global revision, rising across deletion and
 *   re-creation.
 * - **Release**: one txn: if the lock key's `create_revision` is still our fence, delete it and its guard. A
 *   retried or late release can never delete a newer holder's key (etcd-io/etcd#22082). Deferred while
 *   `lockAtLeastForMs` has not elapsed: the session keeps the key, renewing it, until then.
 * - **Lock-delay**: the guard lives on a second lease whose TTL is the session TTL plus the lock-delay,
 *   renewed in the same round, just before the session lease. When the session dies unreleased, the lock key
 *   goes with the session lease and the guard keeps the key unavailable for the lock-delay after it.
 */
export class EtcdSession extends AbstractLockSession<EtcdLeaseState> {
  readonly #init: EtcdSessionInit;
  readonly #keepAlive: KeepAlive;
  readonly #pending = new Map<string, PendingKey>();
  readonly #inflight = new Set<Promise<unknown>>();
  readonly #line: EtcdLine<EtcdLeaseState>;
  /** Aborts when background work must stop: the session ended, was lost, or was abandoned. */
  readonly #background = new AbortController();
  #abandoned = false;

  constructor(init: EtcdSessionInit) {
    super({ id: init.id, ttlMs: init.ttlMs, clock: init.clock, watch: init.watch, nativeWatch: true });
    this.#init = init;
    this.#keepAlive = new KeepAlive({
      ttlMs: init.ttlMs,
      startedAt: init.startedAt,
      clock: init.clock,
      renew: (signal) => this.#renew(signal),
      onLost: (error) => this.#lose(error),
      onRenewError: (error) => this.#report(error, `renew session ${this.id}`),
    }).start();
    this.#line = new EtcdLine<EtcdLeaseState>({
      leaseId: init.leaseId,
      rpc: init.rpc,
      keys: init.keys,
      clock: init.clock,
      ttlMs: init.ttlMs,
      watch: init.watch,
      take: (key, options, what, ops) => this.#take(key, options, what, ops),
      acquired: (key, options, response) => this.#acquired(key, options, response) as Acquisition<never>,
      report: (error, context) => this.#report(error, context),
      signal: this.#background.signal,
    });
  }

  /**
   * Test hook: behave like a crashed process. Renewals and deferred releases stop; nothing is released or
   * revoked, so etcd expires the lease on its own. The session's signal does not abort.
   * @internal
   */
  abandon(): void {
    this.#abandoned = true;
    this.#background.abort();
    this.#keepAlive.stop();
    this.#stopBackground();
    this.haltWaiting();
  }

  override tryAcquire(
    key: string,
    options: TryAcquireOptions = {},
  ): Promise<ManagedLease<EtcdLeaseState> | null> {
    return this.#track(super.tryAcquire(key, options));
  }

  override acquire(key: string, options: AcquireOptions = {}): Promise<Lease> {
    return this.#track(super.acquire(key, options));
  }

  protected override waitingLine(): WaitingLine<EtcdPlace, EtcdLeaseState> {
    return this.#line;
  }

  /** Counts an acquisition in flight, so that `destroy()` waits for it. */
  #track<T>(attempt: Promise<T>): Promise<T> {
    this.#inflight.add(attempt);
    const settled = () => this.#inflight.delete(attempt);
    attempt.then(settled, settled);
    return attempt;
  }

  protected async acquireOnce(
    key: string,
    options: TryAcquireOptions,
  ): Promise<Acquisition<EtcdLeaseState> | null> {
    const response = await this.#take(key, options, `acquire '${key}'`, {
      compare: [],
      success: [],
      failure: [],
    });
    return response?.succeeded ? this.#acquired(key, options, response) : null;
  }

  /**
   * The one way this session takes a key (see `EtcdLineHost.take`): while the txn is in flight the key is
   * marked `acquiring`, so that no other attempt of this session on it runs at the same time; a transport
   * failure leaves it `unsettled`, to be deleted in the background if our lease holds it.
   */
  async #take(
    key: string,
    options: TryAcquireOptions,
    what: string,
    ops: { compare: ICompare[]; success: IRequestOp[]; failure: IRequestOp[] },
  ): Promise<ITxnResponse | undefined> {
    if (!(await this.#ready(key))) return undefined;
    const { keys, leaseId, delayLeaseId } = this.#init;
    const lockKey = keys.lock(key);
    const guardKey = keys.guard(key);
    const success: IRequestOp[] = [
      { request_put: { key: lockKey, value: Buffer.from(options.value ?? ''), lease: leaseId } },
    ];
    if (delayLeaseId)
      success.push({ request_put: { key: guardKey, value: Buffer.alloc(0), lease: delayLeaseId } });
    const marker = this.#newPending({
      kind: 'acquiring',
      lockKey,
      guardKey,
      guard: { key: lockKey, target: 'Lease', result: 'Equal', lease: leaseId },
    });
    this.#pending.set(key, marker);
    try {
      return await this.#init.rpc.txn(
        what,
        [absent(lockKey), absent(guardKey), ...ops.compare],
        [...success, ...ops.success],
        ops.failure,
      );
    } catch (error) {
      this.#failed(error);
      if (this.#pending.get(key) === marker) this.#pending.delete(key);
      if (!(error instanceof BatonError) || error.retryable) {
        // The txn may have been applied without our hearing of it: delete the key if our lease holds it.
        this.#deferDeletion(key, { ...marker, kind: 'unsettled' }, error);
      }
      throw error;
    } finally {
      if (this.#pending.get(key) === marker) this.#pending.delete(key);
    }
  }

  /**
   * Whether this session may try to take `key`: not while its own earlier acquisition of it is being
   * released later (lockAtLeastFor), nor while an acquisition or release of it with an unknown outcome is
   * unsettled (its background deletion, conditional on our lease, must never meet a new lease of ours).
   */
  async #ready(key: string): Promise<boolean> {
    const earlier = this.#pending.get(key);
    if (!earlier) return true;
    if (earlier.kind !== 'unsettled') return false;
    await this.#settle(key, earlier).catch(() => undefined);
    return !this.#pending.has(key);
  }

  /** The acquisition a committed take made: its fence is the txn's revision, the lock key's create revision. */
  #acquired(key: string, options: TryAcquireOptions, response: ITxnResponse): Acquisition<EtcdLeaseState> {
    const fence = revision(response.header.revision);
    if (fence <= 0) {
      throw new ProtocolError(`etcd: acquire '${key}' committed at revision ${fence}`, { backend: BACKEND });
    }
    const { keys } = this.#init;
    return { fence, value: options.value, state: { lockKey: keys.lock(key), guardKey: keys.guard(key) } };
  }

  protected async releaseOnce(lease: ManagedLease<EtcdLeaseState>): Promise<boolean> {
    const { lockKey, guardKey } = lease.state;
    const guard: ICompare = { key: lockKey, target: 'Create', result: 'Equal', create_revision: lease.fence };
    const holdUntil = lease.acquiredAt + lease.lockAtLeastForMs;
    const now = this.clock.monotonicNow();
    if (holdUntil > now) {
      const pending = this.#newPending({ kind: 'deferred', lockKey, guardKey, guard }, holdUntil);
      this.#pending.set(lease.key, pending);
      pending.timer = this.clock.setTimeout(() => this.#runPending(lease.key, pending), holdUntil - now);
      return true;
    }
    try {
      return await this.#deleteAt(`release '${lease.key}'`, { lockKey, guardKey, guard });
    } catch (error) {
      this.#failed(error);
      this.#deferDeletion(lease.key, { kind: 'unsettled', lockKey, guardKey, guard }, error);
      throw error;
    }
  }

  protected async publishOnce(lease: ManagedLease<EtcdLeaseState>, value: string): Promise<void> {
    const { lockKey } = lease.state;
    let response: Awaited<ReturnType<EtcdRpc['txn']>>;
    try {
      response = await this.#init.rpc.txn(
        `publish on '${lease.key}'`,
        [{ key: lockKey, target: 'Create', result: 'Equal', create_revision: lease.fence }],
        [{ request_put: { key: lockKey, value: Buffer.from(value), lease: this.#init.leaseId } }],
      );
    } catch (error) {
      this.#failed(error);
      throw error;
    }
    if (response.succeeded) return;
    const error = new LeaseLostError(`lease '${lease.key}' is no longer held by session ${this.id} in etcd`, {
      backend: BACKEND,
    });
    lease.markLost(error);
    throw error;
  }

  protected async endSession(): Promise<void> {
    // Acquisitions still in flight may add leases after destroy() took its snapshot: release those too.
    await Promise.allSettled([...this.#inflight]);
    await Promise.allSettled(this.leases().map((lease) => lease.release()));
    const lost = this.signal.aborted;
    if (!lost && !this.#abandoned) await this.#flushPending();
    this.#background.abort();
    this.#keepAlive.stop();
    this.#stopBackground();
    if (this.#abandoned) return;
    const { rpc, leaseId, delayLeaseId } = this.#init;
    if (lost) {
      // Frees what the lease still holds, if etcd still has it; the delay lease stays so that lock-delay applies.
      await rpc.revoke(leaseId).catch(() => undefined);
      return;
    }
    await rpc.revoke(leaseId);
    if (delayLeaseId) await rpc.revoke(delayLeaseId);
  }

  async #renew(signal: AbortSignal): Promise<void> {
    const { leaseId, delayLeaseId, requestTimeoutMs } = this.#init;
    // The delay lease first: the session lease is never renewed past its guards.
    const ids = delayLeaseId ? [delayLeaseId, leaseId] : [leaseId];
    const timeoutMs = Math.max(50, Math.min(requestTimeoutMs, this.ttlMs / 3));
    const ttls = await this.#init.rpc.keepAlive(ids, signal, timeoutMs);
    if (ttls.some((ttl) => !(ttl > 0))) {
      throw new SessionLostError(
        `etcd no longer knows the lease of session ${this.id}: it expired or was revoked`,
        {
          backend: BACKEND,
        },
      );
    }
  }

  #lose(error: BatonError): void {
    this.#background.abort();
    this.#keepAlive.stop();
    this.markSessionLost(error);
    this.#stopBackground();
  }

  /** A request failed: an unknown lease means the session is gone. */
  #failed(error: unknown): void {
    if (error instanceof SessionLostError) this.#lose(error);
  }

  /** Deletes a lock key and its guard if `guard` holds; `false` when it did not (the key is not ours). */
  async #deleteAt(
    what: string,
    target: Pick<PendingKey, 'lockKey' | 'guardKey' | 'guard'>,
  ): Promise<boolean> {
    const response = await this.#init.rpc.txn(
      what,
      [target.guard],
      [{ request_delete_range: { key: target.lockKey } }, { request_delete_range: { key: target.guardKey } }],
    );
    return response.succeeded;
  }

  #newPending(target: Pick<PendingKey, 'kind' | 'lockKey' | 'guardKey' | 'guard'>, dueAt = 0): PendingKey {
    return { ...target, dueAt, timer: undefined, running: undefined, failures: 0 };
  }

  #deferDeletion(
    key: string,
    target: Pick<PendingKey, 'kind' | 'lockKey' | 'guardKey' | 'guard'>,
    error: unknown,
  ): void {
    if (this.signal.aborted || this.#abandoned) return;
    const pending = this.#newPending(target);
    this.#pending.set(key, pending);
    this.#retryLater(key, pending, error);
  }

  /** One attempt at the pending deletion of `key`; concurrent callers share it. Rejects if it failed. */
  #settle(key: string, pending: PendingKey): Promise<void> {
    pending.running ??= (async () => {
      try {
        await this.#deleteAt(`release '${key}'`, pending);
        if (pending.timer !== undefined) this.clock.clearTimeout(pending.timer);
        if (this.#pending.get(key) === pending) this.#pending.delete(key);
      } finally {
        pending.running = undefined;
      }
    })();
    return pending.running;
  }

  #runPending(key: string, pending: PendingKey): void {
    pending.timer = undefined;
    if (this.#pending.get(key) !== pending || this.#abandoned || this.signal.aborted) return;
    this.#settle(key, pending).catch((error: unknown) => {
      this.#report(error, `release '${key}'`);
      this.#failed(error);
      pending.kind = 'unsettled';
      this.#retryLater(key, pending, error);
    });
  }

  /** Retries a pending deletion with jittered backoff; one that retrying cannot fix waits for the next try. */
  #retryLater(key: string, pending: PendingKey, error: unknown): void {
    if (this.#abandoned || this.signal.aborted || this.#pending.get(key) !== pending) return;
    if (error instanceof BatonError && !error.retryable) return;
    const delay = backoffDelay(pending.failures++, {
      baseMs: Math.max(10, Math.min(1_000, this.ttlMs / 10)),
      maxMs: Math.max(100, this.ttlMs / 2),
    });
    if (pending.timer !== undefined) this.clock.clearTimeout(pending.timer);
    pending.timer = this.clock.setTimeout(() => this.#runPending(key, pending), delay);
  }

  /** Before the session ends: wait out lockAtLeastFor windows, then settle every pending deletion. */
  async #flushPending(): Promise<void> {
    const flush = async (key: string, pending: PendingKey): Promise<void> => {
      if (pending.kind === 'acquiring') return;
      if (pending.timer !== undefined) this.clock.clearTimeout(pending.timer);
      pending.timer = undefined;
      const wait = pending.kind === 'deferred' ? pending.dueAt - this.clock.monotonicNow() : 0;
      if (wait > 0) await sleep(wait, { signal: this.signal, clock: this.clock });
      const giveUpAt = this.clock.monotonicNow() + this.ttlMs;
      for (let attempt = 0; this.#pending.get(key) === pending && !this.signal.aborted; attempt++) {
        try {
          await this.#settle(key, pending);
          return;
        } catch (error) {
          this.#report(error, `release '${key}'`);
          if (this.clock.monotonicNow() >= giveUpAt) return;
          await sleep(backoffDelay(attempt, { baseMs: 50, maxMs: Math.max(100, this.ttlMs / 4) }), {
            signal: this.signal,
            clock: this.clock,
          });
        }
      }
    };
    await Promise.allSettled([...this.#pending].map(([key, pending]) => flush(key, pending)));
  }

  #stopBackground(): void {
    for (const pending of this.#pending.values()) {
      if (pending.timer !== undefined) this.clock.clearTimeout(pending.timer);
      pending.timer = undefined;
    }
    if (this.signal.aborted || this.#abandoned) this.#pending.clear();
  }

  #report(error: unknown, context: string): void {
    try {
      this.#init.onError?.(error, context);
    } catch {
      // An observer must never break the session.
    }
  }
}

/** The compare of a key that does not exist. */
function absent(key: Buffer): ICompare {
  return { key, target: 'Create', result: 'Equal', create_revision: 0 };
}
