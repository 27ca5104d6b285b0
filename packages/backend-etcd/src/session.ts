import {
  AbstractLockSession,
  type Acquisition,
  BatonError,
  type Clock,
  KeepAlive,
  LeaseLostError,
  type LockHolder,
  type ManagedLease,
  type PendingRelease,
  PendingReleases,
  ProtocolError,
  reportTo,
  SessionLostError,
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
interface PendingKey extends PendingRelease {
  lockKey: Buffer;
  guardKey: Buffer;
  /** Condition of the deletion: the acquisition's create revision, or (outcome unknown) our lease. */
  guard: ICompare;
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
  readonly #pending: PendingReleases<PendingKey>;
  readonly #line: EtcdLine<EtcdLeaseState>;
  /** Aborts when background work must stop: the session ended, was lost, or was abandoned. */
  readonly #background = new AbortController();
  #abandoned = false;

  constructor(init: EtcdSessionInit) {
    super({ id: init.id, ttlMs: init.ttlMs, clock: init.clock, watch: init.watch, nativeWatch: true });
    this.#init = init;
    this.#pending = new PendingReleases<PendingKey>({
      clock: init.clock,
      ttlMs: init.ttlMs,
      signal: this.signal,
      abandoned: () => this.#abandoned,
      release: (pending, key) => this.#deleteAt(`release '${key}'`, pending),
      report: (error, context) => this.#report(error, context),
      onFailure: (error) => this.#failed(error),
    });
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

  protected override waitingLine(): WaitingLine<EtcdPlace, EtcdLeaseState> {
    return this.#line;
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
      // For operators only: when the key was taken, on this process's clock (see `EtcdKeys`).
      {
        request_put: {
          key: keys.since(key),
          value: Buffer.from(String(this.clock.wallNow())),
          lease: leaseId,
        },
      },
    ];
    if (delayLeaseId)
      success.push({ request_put: { key: guardKey, value: Buffer.alloc(0), lease: delayLeaseId } });
    const marker = this.#pending.add(key, {
      kind: 'acquiring',
      lockKey,
      guardKey,
      guard: { key: lockKey, target: 'Lease', result: 'Equal', lease: leaseId },
    });
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
    await this.#pending.settle(key, earlier).catch(() => undefined);
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
      const pending = this.#pending.add(lease.key, {
        kind: 'deferred',
        lockKey,
        guardKey,
        guard,
        dueAt: holdUntil,
      });
      this.#pending.deferUntilDue(lease.key, pending);
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
    const lost = this.signal.aborted;
    if (!lost && !this.#abandoned) await this.#pending.flush();
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
    const caller = this.#init.keys.callerKey(target.lockKey);
    const response = await this.#init.rpc.txn(
      what,
      [target.guard],
      [
        { request_delete_range: { key: target.lockKey } },
        { request_delete_range: { key: target.guardKey } },
        ...(caller === undefined ? [] : [{ request_delete_range: { key: this.#init.keys.since(caller) } }]),
      ],
    );
    return response.succeeded;
  }

  #deferDeletion(
    key: string,
    target: Pick<PendingKey, 'kind' | 'lockKey' | 'guardKey' | 'guard'>,
    error: unknown,
  ): void {
    if (this.signal.aborted || this.#abandoned) return;
    this.#pending.retryLater(key, this.#pending.add(key, target), error);
  }

  #stopBackground(): void {
    this.#pending.stop();
  }

  #report(error: unknown, context: string): void {
    reportTo(this.#init.onError, error, context);
  }
}

/** The compare of a key that does not exist. */
function absent(key: Buffer): ICompare {
  return { key, target: 'Create', result: 'Equal', create_revision: 0 };
}
