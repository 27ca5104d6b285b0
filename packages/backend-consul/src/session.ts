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
  PermissionDeniedError,
  ProtocolError,
  reportTo,
  SessionLostError,
  sessionRetryDelay,
  sleep,
  type TryAcquireOptions,
  type WaitingLine,
  type WatchOptions,
} from '@baton/core';
import { SINCE_SEGMENT, sessionOf, sinceKey } from './entry.js';
import { aclHint, BACKEND, httpStatusOf } from './errors.js';
import type { ConsulHttp, TxnError, TxnKvOp } from './http.js';
import { KeyMonitors } from './key-monitor.js';
import type { KeyCodec } from './keys.js';
import { ConsulLine, type ConsulPlace } from './line.js';

/** Per-lease bookkeeping of the Consul backend. */
export interface ConsulLeaseState {
  /** The encoded key in Consul. */
  readonly consulKey: string;
  /** The entry's `ModifyIndex` after our last write (the acquisition, then each publish). */
  index: number;
  /** `Flags` as we last wrote them: 0 until the first publish stores the fence there. */
  flags: number;
}

/** A key this session may still hold at Consul without a live lease (see core's `PendingRelease`). */
interface PendingKey extends PendingRelease {
  consulKey: string;
  value: string | undefined;
  flags: number;
}

/** What a {@link ConsulSession} needs from its provider. */
export interface ConsulSessionInit {
  id: string;
  ttlMs: number;
  lockDelayMs: number;
  /** Monotonic time at which the session-create request was sent. */
  startedAt: number;
  http: ConsulHttp;
  codec: KeyCodec;
  clock: Clock;
  watch: (key: string, options: WatchOptions) => AsyncIterable<LockHolder | null>;
  /** A lease held this long gets a blocking-query monitor on its key. */
  monitorAfterMs: number;
  /** `?wait` of the monitor's blocking queries. */
  watchWaitMs: number;
  /** Deadline of ordinary requests. */
  requestTimeoutMs: number;
  /** Observes failures that are retried in the background (renewals, monitors, deferred releases). */
  onError?: ((error: unknown, context: string) => void) | undefined;
}

/**
 * One Consul session (`TTL`, `LockDelay`, `Behavior`, `Checks`) holding any number of KV locks.
 *
 * - **Renewal**: one `PUT /v1/session/renew` per TTL/2 for the whole session, whatever the number of
 *   leases, through core's {@link KeepAlive}: transient failures retried until the TTL runs out, a 404
 *   ends the session at once. The session is treated as lost TTL after the start of its last good renewal,
 *   although Consul may keep it up to 2×TTL.
 * - **Acquire**: one `PUT /v1/txn` with `lock` + `get` of the key; the fence is the entry's `ModifyIndex`
 *   in that same answer.
 * - **Release**: one `PUT /v1/txn` with `check-session` + `delete`: the key goes while it is still ours, so
 *   no key is left behind; deferred while `lockAtLeastForMs` has not elapsed (the session keeps the key,
 *   renewing, until then).
 * - **Loss detection**: session loss from renewals; a lease held longer than `monitorAfterMs` also gets a
 *   `?consistent` blocking query on its key that ends the lease when another session (or nobody) holds it
 *   or the key is deleted. Monitor errors are retried with jittered backoff, never treated as loss.
 */
export class ConsulSession extends AbstractLockSession<ConsulLeaseState> {
  /** The lock-delay Consul applies to this session's keys when the session is invalidated. */
  readonly lockDelayMs: number;
  readonly #init: ConsulSessionInit;
  readonly #keepAlive: KeepAlive;
  readonly #pending: PendingReleases<PendingKey>;
  readonly #monitors: KeyMonitors<ConsulLeaseState>;
  readonly #line: ConsulLine<ConsulLeaseState>;
  #abandoned = false;

  constructor(init: ConsulSessionInit) {
    super({ id: init.id, ttlMs: init.ttlMs, clock: init.clock, watch: init.watch, nativeWatch: true });
    this.#init = init;
    this.lockDelayMs = init.lockDelayMs;
    const report = (error: unknown, context: string) => this.#report(error, context);
    this.#pending = new PendingReleases<PendingKey>({
      clock: init.clock,
      ttlMs: init.ttlMs,
      signal: this.signal,
      abandoned: () => this.#abandoned,
      release: (pending) => this.#releaseAtConsul(pending),
      report,
    });
    this.#monitors = new KeyMonitors({
      sessionId: init.id,
      http: init.http,
      clock: init.clock,
      ttlMs: init.ttlMs,
      monitorAfterMs: init.monitorAfterMs,
      watchWaitMs: init.watchWaitMs,
      report,
    });
    this.#keepAlive = new KeepAlive({
      ttlMs: init.ttlMs,
      startedAt: init.startedAt,
      clock: init.clock,
      renew: (signal) => this.#renew(signal),
      onLost: (error) => this.#lose(error),
      onRenewError: (error) => this.#report(error, `renew session ${this.id}`),
    }).start();
    this.#line = new ConsulLine<ConsulLeaseState>({
      sessionId: init.id,
      http: init.http,
      codec: init.codec,
      clock: init.clock,
      ttlMs: init.ttlMs,
      watchWaitMs: init.watchWaitMs,
      watch: init.watch,
      lock: (key, options, extraOps) => this.#lock(key, options, extraOps, 'taken'),
      refused: (key, errors) => this.#refusedLineUp(key, errors),
      dropLater: (placeKey) => this.#dropLater(placeKey),
    });
  }

  /**
   * Test hook: behave like a crashed process. Renewals, monitors and deferred releases stop; nothing is
   * released or destroyed, so Consul invalidates the session on its own (after up to 2×TTL) and applies the
   * lock-delay. The session's signal does not abort (a dead process observes nothing).
   * @internal
   */
  abandon(): void {
    this.#abandoned = true;
    this.#keepAlive.stop();
    this.#stopBackground();
    this.haltWaiting();
  }

  protected override waitingLine(): WaitingLine<ConsulPlace, ConsulLeaseState> {
    return this.#line;
  }

  protected acquireOnce(
    key: string,
    options: TryAcquireOptions,
  ): Promise<Acquisition<ConsulLeaseState> | null> {
    return this.#lock(key, options, [], undefined);
  }

  /**
   * One txn: `lock` + `get` of the key, then `extraOps` (a waiting line removes its places). With `keep`,
   * a successful acquisition stays marked pending until the lease is handed over (`onLeaseAcquired`), so
   * that a `destroy()` in between releases it cleanly.
   */
  async #lock(
    key: string,
    options: TryAcquireOptions,
    extraOps: TxnKvOp[],
    keep: 'taken' | undefined,
  ): Promise<Acquisition<ConsulLeaseState> | null> {
    const consulKey = this.#init.codec.encode(key);
    const earlier = this.#pending.get(key);
    if (earlier) {
      if (earlier.kind !== 'unsettled') return null;
      await this.#pending.settle(key, earlier);
      if (this.#pending.has(key)) return null;
    }
    const marker = this.#pending.add(key, { kind: 'acquiring', consulKey, value: options.value, flags: 0 });
    let outcome: Awaited<ReturnType<ConsulHttp['txn']>>;
    try {
      outcome = await this.#init.http.txn(`acquire '${key}'`, [
        { Verb: 'lock', Key: consulKey, Value: options.value, Session: this.id },
        { Verb: 'get', Key: consulKey },
        // For operators only: when the key was taken, on this process's clock (see SINCE_SEGMENT). Only this
        // session ever writes this key, so the lock cannot fail for anyone else's sake.
        {
          Verb: 'lock',
          Key: sinceKey(consulKey, this.id),
          Value: String(this.clock.wallNow()),
          Session: this.id,
        },
        ...extraOps,
      ]);
    } catch (error) {
      if (mayHaveApplied(error)) {
        // The lock may have been taken without us hearing of it: release it before this key is used again.
        marker.kind = 'unsettled';
        this.#pending.retryLater(key, marker, error);
      } else {
        this.#pending.delete(key);
      }
      throw error;
    }
    if (!outcome.committed) {
      this.#pending.delete(key);
      return this.#refused(key, outcome.errors);
    }
    const entry = outcome.results.findLast((result) => result.Key === consulKey);
    if (keep && entry) marker.kind = keep;
    else this.#pending.delete(key);
    if (!entry || sessionOf(entry) !== this.id) {
      throw new ProtocolError(
        `Consul: acquire '${key}' committed but the entry read back is not held by this session: ${JSON.stringify(entry)}`,
        { backend: BACKEND },
      );
    }
    return {
      fence: entry.ModifyIndex,
      value: options.value,
      state: { consulKey, index: entry.ModifyIndex, flags: 0 },
    };
  }

  #refusedLineUp(key: string, errors: TxnError[]): Error {
    const what = errors[0]?.What ?? '';
    if (/invalid session|missing session|session .*(not found|invalid)/i.test(what)) {
      const error = new SessionLostError(
        `Consul no longer knows session ${this.id} (line up for '${key}': ${what})`,
        {
          backend: BACKEND,
        },
      );
      this.#lose(error);
      return error;
    }
    if (isPermissionText(what)) {
      return new PermissionDeniedError(
        `Consul: line up for '${key}' denied (${what}). baton needs ${aclHint(this.#init.codec.prefix)}.`,
        { backend: BACKEND },
      );
    }
    return new ProtocolError(`Consul rolled back line up for '${key}': ${describe(errors)}`, {
      backend: BACKEND,
    });
  }

  /**
   * Deletes a place of a waiting line whose removal failed or whose creation may have been applied unseen,
   * retrying with backoff until it is gone or the session ends (Consul then lets go of it anyway).
   */
  #dropLater(placeKey: string): void {
    void (async () => {
      for (let attempt = 0; !this.#abandoned && !this.signal.aborted; attempt++) {
        await sleep(sessionRetryDelay(attempt, this.ttlMs), { signal: this.signal, clock: this.clock }).catch(
          () => undefined,
        );
        if (this.#abandoned || this.signal.aborted) return;
        try {
          await this.#init.http.deleteKey(placeKey);
          return;
        } catch (error) {
          this.#report(error, `leave the line (${placeKey})`);
          if (error instanceof BatonError && !error.retryable) return;
        }
      }
    })();
  }

  protected async releaseOnce(lease: ManagedLease<ConsulLeaseState>): Promise<boolean> {
    const now = this.clock.monotonicNow();
    const holdUntil = lease.acquiredAt + lease.lockAtLeastForMs;
    const fields = {
      consulKey: lease.state.consulKey,
      value: lease.value,
      flags: lease.state.flags,
      dueAt: holdUntil,
    };
    if (holdUntil > now) {
      // lockAtLeastFor: the session keeps the key (and keeps renewing) until the minimum has passed.
      this.#pending.deferUntilDue(lease.key, this.#pending.add(lease.key, { kind: 'deferred', ...fields }));
      return true;
    }
    try {
      return await this.#releaseAtConsul({ ...fields });
    } catch (error) {
      // Whether Consul applied it is unknown: keep the key blocked for this session and retry.
      this.#pending.retryLater(
        lease.key,
        this.#pending.add(lease.key, { kind: 'unsettled', ...fields }),
        error,
      );
      throw error;
    }
  }

  protected async publishOnce(lease: ManagedLease<ConsulLeaseState>, value: string): Promise<void> {
    const { consulKey } = lease.state;
    // check-session makes the write conditional: `?acquire` alone would re-create a deleted key.
    const outcome = await this.#init.http.txn(`publish on '${lease.key}'`, [
      { Verb: 'check-session', Key: consulKey, Session: this.id },
      { Verb: 'lock', Key: consulKey, Value: value, Flags: lease.fence, Session: this.id },
    ]);
    if (outcome.committed) {
      const entry = outcome.results.at(-1);
      if (entry) lease.state.index = Math.max(lease.state.index, entry.ModifyIndex);
      lease.state.flags = lease.fence;
      return;
    }
    const denied = outcome.errors.find((e) => isPermissionText(e.What));
    if (denied) {
      throw new PermissionDeniedError(
        `Consul: publish on '${lease.key}' denied (${denied.What}). baton needs ${aclHint(this.#init.codec.prefix)}.`,
        { backend: BACKEND },
      );
    }
    const error = new LeaseLostError(
      `lease '${lease.key}' is no longer held by session ${this.id} at Consul (${describe(outcome.errors)})`,
      { backend: BACKEND },
    );
    lease.markLost(error);
    throw error;
  }

  protected override onLeaseAcquired(lease: ManagedLease<ConsulLeaseState>): void {
    if (this.#pending.get(lease.key)?.kind === 'taken') this.#pending.delete(lease.key);
    if (!this.#abandoned) this.#monitors.start(lease);
  }

  protected override onLeaseEnded(lease: ManagedLease<ConsulLeaseState>): void {
    this.#monitors.stop(lease);
  }

  protected async endSession(): Promise<void> {
    const lost = this.signal.aborted;
    if (!lost && !this.#abandoned) await this.#pending.flush();
    this.#keepAlive.stop();
    this.#stopBackground();
    try {
      await this.#init.http.destroySession(this.id);
    } catch (error) {
      // A lost session is gone or expiring at Consul anyway; only report failures of a healthy one.
      if (!lost) throw error;
    }
  }

  async #renew(signal: AbortSignal): Promise<void> {
    const timeoutMs = Math.max(50, Math.min(this.#init.requestTimeoutMs, this.ttlMs / 3));
    let renewed: unknown;
    try {
      renewed = await this.#init.http.renewSession(this.id, { signal, timeoutMs });
    } catch (error) {
      if (httpStatusOf((error as { cause?: unknown }).cause)?.status === 404) {
        throw new SessionLostError(
          `Consul no longer knows session ${this.id}: it expired, was destroyed, or a health check it is bound to failed`,
          { backend: BACKEND, cause: error },
        );
      }
      throw error;
    }
    // Consul answers 404 for an unknown session; old versions answered 200 with `null` (which the client
    // renders as `undefined`) or `[]`.
    if (renewed === null || renewed === undefined || (Array.isArray(renewed) && renewed.length === 0)) {
      throw new SessionLostError(`Consul no longer knows session ${this.id}`, { backend: BACKEND });
    }
  }

  #lose(error: BatonError): void {
    this.#keepAlive.stop();
    this.markSessionLost(error);
    this.#stopBackground();
  }

  #refused(key: string, errors: TxnError[]): null {
    const lockError = errors.find((e) => e.OpIndex === 0) ?? errors[0];
    const what = lockError?.What ?? '';
    if (/invalid session|missing session|session .*(not found|invalid)/i.test(what)) {
      const error = new SessionLostError(
        `Consul no longer knows session ${this.id} (acquire '${key}': ${what})`,
        {
          backend: BACKEND,
        },
      );
      this.#lose(error);
      throw error;
    }
    if (isPermissionText(what)) {
      throw new PermissionDeniedError(
        `Consul: acquire '${key}' denied (${what}). baton needs ${aclHint(this.#init.codec.prefix)}.`,
        { backend: BACKEND },
      );
    }
    // Contention and lock-delay are the normal "not now" answers.
    if (/lock.?delay|already held|is held|held by|failed to lock/i.test(what)) return null;
    throw new ProtocolError(
      `Consul rolled back acquire '${key}' for an unexpected reason: ${describe(errors)}`,
      {
        backend: BACKEND,
      },
    );
  }

  /**
   * Deletes the key while this session still holds it, in one txn: a key per task would otherwise stay in
   * Consul forever. Fences stay rising (the next holder's fence is a newer Raft index), and a retried delete
   * after a lost answer finds the key gone or held by someone else and touches nothing.
   */
  async #releaseAtConsul(pending: Pick<PendingKey, 'consulKey'>): Promise<boolean> {
    const outcome = await this.#init.http.txn(`release of '${pending.consulKey}'`, [
      { Verb: 'check-session', Key: pending.consulKey, Session: this.id },
      { Verb: 'delete', Key: pending.consulKey },
      // The acquisition times: ours, and any an earlier holder's crash left (behavior=release keeps them).
      { Verb: 'delete-tree', Key: pending.consulKey + SINCE_SEGMENT },
    ]);
    if (outcome.committed) return true;
    const denied = outcome.errors.find((e) => isPermissionText(e.What));
    if (denied) {
      throw new PermissionDeniedError(
        `Consul: release of '${pending.consulKey}' denied (${denied.What}). baton needs ${aclHint(this.#init.codec.prefix)}.`,
        { backend: BACKEND },
      );
    }
    return false;
  }

  #stopBackground(): void {
    this.#monitors.stopAll();
    this.#pending.stop();
  }

  #report(error: unknown, context: string): void {
    reportTo(this.#init.onError, error, context);
  }
}

function isPermissionText(text: string): boolean {
  return /permission denied|acl not found|token not found/i.test(text);
}

function describe(errors: readonly TxnError[]): string {
  return errors.map((e) => `op ${e.OpIndex}: ${e.What}`).join('; ') || 'no reason given';
}

/**
 * Whether a failed write may still have been applied: anything but a 4xx answer (refused before applying)
 * or a connection that never opened. A 5xx may come after the commit (a leader lost while answering, a
 * proxy timing out in front of Consul), and so may a timeout or a reset connection.
 */
function mayHaveApplied(error: unknown): boolean {
  const cause = (error as { cause?: unknown } | null)?.cause;
  const http = httpStatusOf(cause);
  if (http) return http.status >= 500;
  const code = (cause as { code?: unknown } | null)?.code;
  return !(
    code === 'ECONNREFUSED' ||
    code === 'ENOTFOUND' ||
    code === 'EAI_AGAIN' ||
    code === 'EHOSTUNREACH' ||
    code === 'ENETUNREACH'
  );
}
