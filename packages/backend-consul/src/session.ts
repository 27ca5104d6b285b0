import {
  AbstractLockSession,
  type Acquisition,
  BatonError,
  backoffDelay,
  type Clock,
  jitter,
  KeepAlive,
  LeaseLostError,
  type LockHolder,
  type ManagedLease,
  PermissionDeniedError,
  ProtocolError,
  SessionLostError,
  sleep,
  type TimerHandle,
  type TryAcquireOptions,
  type WaitingLine,
  type WatchOptions,
} from '@baton/core';
import { sessionOf } from './entry.js';
import { aclHint, BACKEND, httpStatusOf } from './errors.js';
import type { ConsulHttp, TxnError, TxnKvOp } from './http.js';
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
 * A key this session may still hold at Consul without a live lease: an acquisition in flight, a release
 * deferred by `lockAtLeastForMs`, or an acquisition/release whose outcome is unknown after a transport
 * failure. While a key is pending this session never takes it again (Consul would let the same session
 * re-lock it and hand out a stale fence); the pending release runs later, or before the next acquisition.
 */
interface PendingKey {
  /** `taken`: acquired by a waiting line, until the session hands the lease to the caller. */
  kind: 'acquiring' | 'taken' | 'deferred' | 'unsettled';
  consulKey: string;
  value: string | undefined;
  flags: number;
  dueAt: number;
  timer: TimerHandle | undefined;
  running: Promise<void> | undefined;
  failures: number;
}

interface Monitor {
  timer: TimerHandle | undefined;
  controller: AbortController;
}

/** The longest delay a timer can represent; larger monitor delays mean "never". */
const MAX_TIMER_MS = 2_147_483_647;

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
  readonly #pending = new Map<string, PendingKey>();
  readonly #monitors = new Map<ManagedLease<ConsulLeaseState>, Monitor>();
  readonly #inflight = new Set<Promise<unknown>>();
  readonly #line: ConsulLine<ConsulLeaseState>;
  #abandoned = false;

  constructor(init: ConsulSessionInit) {
    super({ id: init.id, ttlMs: init.ttlMs, clock: init.clock, watch: init.watch, nativeWatch: true });
    this.#init = init;
    this.lockDelayMs = init.lockDelayMs;
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
      lock: (key, options, extraOps) => this.#track(this.#lock(key, options, extraOps, 'taken')),
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

  override tryAcquire(
    key: string,
    options: TryAcquireOptions = {},
  ): Promise<ManagedLease<ConsulLeaseState> | null> {
    return this.#track(super.tryAcquire(key, options));
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

  /** Counts an acquisition in flight, so that `destroy()` waits for it. */
  #track<T>(attempt: Promise<T>): Promise<T> {
    this.#inflight.add(attempt);
    const settled = () => this.#inflight.delete(attempt);
    attempt.then(settled, settled);
    return attempt;
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
      await this.#settle(key, earlier);
      if (this.#pending.has(key)) return null;
    }
    const marker: PendingKey = {
      kind: 'acquiring',
      consulKey,
      value: options.value,
      flags: 0,
      dueAt: 0,
      timer: undefined,
      running: undefined,
      failures: 0,
    };
    this.#pending.set(key, marker);
    let outcome: Awaited<ReturnType<ConsulHttp['txn']>>;
    try {
      outcome = await this.#init.http.txn(`acquire '${key}'`, [
        { Verb: 'lock', Key: consulKey, Value: options.value, Session: this.id },
        { Verb: 'get', Key: consulKey },
        ...extraOps,
      ]);
    } catch (error) {
      if (mayHaveApplied(error)) {
        // The lock may have been taken without us hearing of it: release it before this key is used again.
        marker.kind = 'unsettled';
        this.#retryLater(key, marker, error);
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
        await sleep(
          backoffDelay(attempt, {
            baseMs: Math.max(10, Math.min(1_000, this.ttlMs / 10)),
            maxMs: Math.max(100, this.ttlMs / 2),
          }),
          { signal: this.signal, clock: this.clock },
        ).catch(() => undefined);
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
    const pending: PendingKey = {
      kind: 'deferred',
      consulKey: lease.state.consulKey,
      value: lease.value,
      flags: lease.state.flags,
      dueAt: holdUntil,
      timer: undefined,
      running: undefined,
      failures: 0,
    };
    if (holdUntil > now) {
      // lockAtLeastFor: the session keeps the key (and keeps renewing) until the minimum has passed.
      this.#pending.set(lease.key, pending);
      pending.timer = this.clock.setTimeout(() => this.#runPending(lease.key, pending), holdUntil - now);
      return true;
    }
    try {
      return await this.#releaseAtConsul(pending);
    } catch (error) {
      // Whether Consul applied it is unknown: keep the key blocked for this session and retry.
      pending.kind = 'unsettled';
      this.#pending.set(lease.key, pending);
      this.#retryLater(lease.key, pending, error);
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
    if (this.#abandoned || this.#init.monitorAfterMs >= MAX_TIMER_MS) return;
    const monitor: Monitor = { timer: undefined, controller: new AbortController() };
    this.#monitors.set(lease, monitor);
    monitor.timer = this.clock.setTimeout(() => {
      monitor.timer = undefined;
      void this.#monitor(lease, monitor.controller.signal);
    }, this.#init.monitorAfterMs);
  }

  protected override onLeaseEnded(lease: ManagedLease<ConsulLeaseState>): void {
    const monitor = this.#monitors.get(lease);
    if (!monitor) return;
    this.#monitors.delete(lease);
    if (monitor.timer !== undefined) this.clock.clearTimeout(monitor.timer);
    monitor.controller.abort();
  }

  protected async endSession(): Promise<void> {
    // Acquisitions still in flight may add leases after destroy() took its snapshot: release those too.
    await Promise.allSettled([...this.#inflight]);
    await Promise.allSettled(this.leases().map((lease) => lease.release()));
    const lost = this.signal.aborted;
    if (!lost && !this.#abandoned) await this.#flushPending();
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
  async #releaseAtConsul(pending: PendingKey): Promise<boolean> {
    const outcome = await this.#init.http.txn(`release of '${pending.consulKey}'`, [
      { Verb: 'check-session', Key: pending.consulKey, Session: this.id },
      { Verb: 'delete', Key: pending.consulKey },
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

  /** One attempt at the pending release of `key`; concurrent callers share it. Rejects if it failed. */
  #settle(key: string, pending: PendingKey): Promise<void> {
    pending.running ??= (async () => {
      try {
        await this.#releaseAtConsul(pending);
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
      pending.kind = 'unsettled';
      this.#retryLater(key, pending, error);
    });
  }

  /**
   * Retries a pending release in the background with jittered backoff. Failures that retrying cannot fix
   * (a 403) stay pending: the next acquisition of the key, or the session's end, tries once more.
   */
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

  /**
   * Before the session ends: wait out lockAtLeastFor windows, then settle every pending release, retrying
   * for up to a TTL each.
   */
  async #flushPending(): Promise<void> {
    const flush = async (key: string, pending: PendingKey): Promise<void> => {
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

  async #monitor(lease: ManagedLease<ConsulLeaseState>, signal: AbortSignal): Promise<void> {
    const { http } = this.#init;
    const { consulKey } = lease.state;
    let index = lease.state.index;
    let failures = 0;
    while (!signal.aborted && lease.held) {
      try {
        const { entry, index: next } = await http.getKey(consulKey, {
          consistent: true,
          index,
          waitMs: this.#init.watchWaitMs,
          signal,
        });
        failures = 0;
        if (signal.aborted || !lease.held) return;
        const holder = sessionOf(entry);
        if (holder !== this.id) {
          const why = !entry
            ? 'the key was deleted at Consul'
            : holder
              ? `session ${holder} holds it now`
              : 'Consul released it (force-release or session invalidation)';
          lease.markLost(new LeaseLostError(`lease '${lease.key}' lost: ${why}`, { backend: BACKEND }));
          return;
        }
        const sent = index;
        index = next < index ? 0 : Math.max(1, next);
        if (index === sent) {
          // The wait ran out without a change; a short pause keeps a server that answers at once from spinning us.
          await sleep(jitter(Math.max(10, Math.min(1_000, this.ttlMs / 10)), 0.5), {
            signal,
            clock: this.clock,
          }).catch(() => undefined);
        }
      } catch (error) {
        if (signal.aborted || !lease.held) return;
        this.#report(error, `monitor '${lease.key}'`);
        const delay = backoffDelay(failures++, {
          baseMs: Math.max(10, Math.min(1_000, this.ttlMs / 10)),
          maxMs: Math.max(100, this.ttlMs / 2),
        });
        await sleep(delay, { signal, clock: this.clock }).catch(() => undefined);
      }
    }
  }

  #stopBackground(): void {
    for (const lease of [...this.#monitors.keys()]) this.onLeaseEnded(lease);
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
