import type { Clock } from './clock.js';

/**
 * What a backend can do beyond the required contract. The conformance kit and the shared helpers read these
 * to pick a strategy (native watch vs. polling) and to skip groups that cannot apply.
 */
export interface LockCapabilities {
  /** `watch` is pushed by the server (Consul blocking queries) rather than polled. */
  readonly nativeWatch: boolean;
  /** Smallest session TTL the backend accepts, in milliseconds. */
  readonly minTtlMs: number;
  /** The backend enforces a lock-delay after a lost (not released) lock. */
  readonly lockDelay: boolean;
  /** `list()` is available. */
  readonly list: boolean;
  /** `forceRelease()` is available. */
  readonly forceRelease: boolean;
  /**
   * Blocking acquisitions ({@link LockSession.acquire}, `withLock`, an election's `campaign`) wait in a
   * first-come-first-served line per key, kept by the backend:
   *
   * - waiters are served in the order they started waiting;
   * - a holder that releases and asks again goes to the back of the line, behind everyone already waiting;
   * - a waiter that gives up (its `signal` aborts, its `timeoutMs` passes) leaves the line at once, and one
   *   that crashes (its session is lost) stops blocking it within the backend's expiry bound, the same bound
   *   that frees a crashed holder's lock.
   *
   * {@link LockSession.tryAcquire} does not queue: it takes a free key even while others wait for it
   * ("barging", as `tryLock()` does on Java's fair `ReentrantLock`), so the cheap non-blocking path costs
   * no more than without a line. Fences are unaffected.
   *
   * When `false`, waiters race for a released key (watch or jittered polling): the one that notices first,
   * or a releasing holder that asks again at once, wins; nobody is starved for good, but there is no order.
   */
  readonly fairQueue: boolean;
  /**
   * Every {@link LockHolder} this provider returns (from `getHolder`, `watch` and `list`) carries
   * {@link LockHolder.acquiredAt} with its {@link LockHolder.acquiredAtSource}, and either
   * {@link LockHolder.leaseRemainingMs} or {@link LockHolder.leaseRemainingAtMostMs}, taken from the backend's
   * own data. The conformance kit checks them when this is `true`. Absent (or `false`): the fields may be
   * missing, as on backends written before they existed. A holder recorded before the backend stored the
   * acquisition time (an older version's record) may still lack `acquiredAt`.
   */
  readonly holderTimes?: boolean;
  /**
   * {@link LockProvider.waiters} is available: the backend's line of blocking waiters per key can be read.
   * Only backends with {@link LockCapabilities.fairQueue} keep such a line; the others have no waiters to
   * show (their blocking acquisitions poll or watch, see `acquire`).
   */
  readonly waiters?: boolean;
}

/** Options for {@link LockProvider.openSession}. */
export interface SessionOptions {
  /**
   * Session time-to-live in milliseconds. The session is renewed well before it runs out; if renewal keeps
   * failing, the session (and every lease in it) is treated as lost once `ttlMs` has passed since the start
   * of the last successful renewal. Defaults to the backend's configured TTL.
   */
  ttlMs?: number;
  /**
   * After this session is *lost* (not after a clean release), nobody may take its keys for this long.
   * Protects against a holder that still believes it holds the lock. Defaults to the backend's setting.
   */
  lockDelayMs?: number;
  /** Human-readable name (worker id, host) stored with the session where the backend can. */
  name?: string;
}

/** Options for {@link LockSession.tryAcquire}. */
export interface TryAcquireOptions {
  /** Value published with the lock (readable through {@link LockProvider.getHolder}); e.g. leader info. */
  value?: string;
  /**
   * Keep the lock unavailable to others for at least this long after it was acquired, even if it is released
   * earlier (ShedLock's `lockAtLeastFor`). Does not extend a lease that is *lost*. From 0 to 365 days
   * ({@link lockDurationBounds}).
   */
  lockAtLeastForMs?: number;
}

/** Options for the blocking {@link LockSession.acquire}. */
export interface AcquireOptions extends TryAcquireOptions {
  /** Abort waiting. The promise rejects with an `ABORTED` error carrying the signal's reason. */
  signal?: AbortSignal;
  /** Give up after this long (0 to 365 days); rejects with a `TIMEOUT` error. Unlimited when omitted. */
  timeoutMs?: number;
}

/**
 * Exclusive ownership of one key, granted to one session.
 *
 * What you may assume while `signal` is not aborted: no other session was granted this key *by the backend*
 * after this lease, and every other holder's fence is smaller than {@link Lease.fence}.
 *
 * What you may not assume: that you still hold the lease a moment later. A lease can be lost at any time
 * (process pause, network partition, server restart). Check `signal` before an irreversible step, pass it to
 * your I/O, and send {@link Lease.fence} with every write so the receiver can reject a stale holder.
 */
export interface Lease extends AsyncDisposable {
  /** The key as the caller passed it (before any backend encoding). */
  readonly key: string;
  /**
   * Fencing token. Strictly greater than the fence of every earlier acquisition of this key by anyone,
   * including after release, expiry, and deletion and re-creation of the key. A safe integer.
   */
  readonly fence: number;
  /** The session that holds this lease. */
  readonly sessionId: string;
  /** The value published with the lock. */
  readonly value: string | undefined;
  /**
   * Aborts when this lease ends: with a `LEASE_LOST` {@link BatonError} when it was lost (session lost,
   * someone else took the key, operator force-release), or `LEASE_RELEASED` after {@link Lease.release}.
   */
  readonly signal: AbortSignal;
  /**
   * Releases the lease so others may take it (subject to `lockAtLeastForMs`). Idempotent: every call returns
   * the same promise. Never releases a lock someone else now holds: the release is conditional on this session
   * still owning this acquisition. Resolves `true` when the holder released it, `false` when the lease had
   * already been lost (expired, taken over, session gone). Rejects only with a transport error; the lease's
   * signal is aborted either way and the backend's own expiry frees the key later.
   */
  release(): Promise<boolean>;
  /**
   * Replaces the published value without giving up the lease (leader `proclaim`). Rejects with `LEASE_LOST`
   * if the lease is no longer held.
   */
  publish(value: string): Promise<void>;
}

/**
 * One participant's connection to the lock backend: a Consul session, or a DynamoDB owner id with its
 * heartbeat. All leases of a session live and die with it.
 */
export interface LockSession extends AsyncDisposable {
  /** Backend session id / owner id. */
  readonly id: string;
  /** The effective TTL in milliseconds. */
  readonly ttlMs: number;
  /** Aborts with a `SESSION_LOST` error when the session can no longer be trusted, or `CLOSED` after destroy. */
  readonly signal: AbortSignal;
  /**
   * Tries once to take `key`. Never waits for a held lock: resolves `null` when someone else holds it (or a
   * lock-delay / lockAtLeastFor window is active). Transport and permission failures reject with a typed
   * {@link BatonError}; they are never reported as `null`. Taking a key this session already holds resolves
   * `null` as well: leases are not re-entrant.
   */
  tryAcquire(key: string, options?: TryAcquireOptions): Promise<Lease | null>;
  /**
   * Waits until `key` can be taken, then returns the lease. On a backend with the `fairQueue` capability
   * the caller waits in line behind earlier waiters (and leaves the line when `signal` aborts or `timeoutMs`
   * passes); otherwise it waits on the backend's watch, or by jittered polling, and races other waiters.
   * Rejects with `ABORTED`, `TIMEOUT`, `SESSION_LOST` / `CLOSED`, or a backend error.
   */
  acquire(key: string, options?: AcquireOptions): Promise<Lease>;
  /**
   * Runs `fn` while holding `key` and releases afterwards, whatever `fn` does. `fn` receives the lease; its
   * `signal` aborts if the lease is lost while `fn` runs.
   */
  withLock<T>(key: string, fn: (lease: Lease) => Promise<T> | T, options?: AcquireOptions): Promise<T>;
  /** Leases this session currently holds. */
  leases(): readonly Lease[];
  /**
   * Releases every lease cleanly, then ends the session. Idempotent. After it, `signal` is aborted and
   * `tryAcquire` rejects with `CLOSED`.
   */
  destroy(): Promise<void>;
}

/**
 * Whose clock an acquisition time was read on:
 *
 * - `server`: the backend server's own clock, at the moment it granted the lock (PostgreSQL's
 *   `clock_timestamp()`, Redis's `TIME`, the in-memory store's clock);
 * - `holder`: the acquiring process's wall clock, stamped into the stored record by the holder at acquisition,
 *   for backends whose server keeps no timestamps (Consul KV, etcd, DynamoDB). It is as right as that
 *   machine's clock: compare it with your own clock only as a display, never to judge expiry.
 */
export type HolderTimeSource = 'server' | 'holder';

/**
 * Who holds a key right now, as the backend reports it.
 *
 * The time fields are the backend's own view, read in the same request (or the same few requests) as the
 * holder itself. Nothing in baton decides anything on them: expiry is the backend's business (see
 * {@link Lease}). They exist so that operators can see how old a lock is and how long it would stay taken
 * if its holder died now. They are present when the provider declares {@link LockCapabilities.holderTimes}.
 */
export interface LockHolder {
  /** The caller's key. */
  readonly key: string;
  /** Id of the holding session. */
  readonly sessionId: string;
  /** Fence of the holder's acquisition. */
  readonly fence: number;
  /** Value the holder published. */
  readonly value: string | undefined;
  /**
   * When this acquisition (this fence) was granted, in milliseconds since the Unix epoch, on the clock
   * {@link LockHolder.acquiredAtSource} names. Publishing a new value does not change it; a new acquisition
   * of the key (a larger fence) has its own. Absent when the backend has no record of it (a record written
   * by an older version of the backend, or a backend without {@link LockCapabilities.holderTimes}).
   */
  readonly acquiredAt?: number;
  /** Whose clock {@link LockHolder.acquiredAt} was read on; present exactly when `acquiredAt` is. */
  readonly acquiredAtSource?: HolderTimeSource;
  /**
   * Milliseconds from this read until the backend stops counting this holder if it stops renewing now: the
   * backend's own figure, computed on the backend server's clock (Redis `exp` − `TIME`, PostgreSQL
   * `expires_at − clock_timestamp()`, the in-memory store's timer). A holder that keeps renewing keeps
   * pushing it back, so it does not run down to 0 while the holder lives. A lock-delay may keep the key
   * unavailable for a while after it. For a holder yielded by `watch`, "this read" is the read that produced
   * the event. Absent where the backend reports no exact figure: see {@link LockHolder.leaseRemainingAtMostMs}.
   */
  readonly leaseRemainingMs?: number;
  /**
   * For backends that report no exact remaining time: an upper bound of it, from the backend's own data.
   * Consul reports only the session's TTL and may wait up to twice the TTL after the last renewal before it
   * invalidates the session, so this is 2 × the TTL that `/v1/session/info` reports; etcd's
   * `LeaseTimeToLive` counts whole seconds rounded down (the lease "will expire in under TTL+1 seconds"), so
   * this is (TTL + 1) s; on DynamoDB it is the time until this provider itself would take the lease over
   * (its record version unchanged for the lease duration, measured from this provider's first sight of that
   * version). The lease may end sooner (the holder's last renewal may be older than the bound assumes, or a
   * contender may have seen the version earlier); it cannot run longer without a renewal. Absent when
   * {@link LockHolder.leaseRemainingMs} is given.
   */
  readonly leaseRemainingAtMostMs?: number;
}

/** One blocking acquisition waiting in a key's line (capability {@link LockCapabilities.waiters}). */
export interface LockWaiter {
  /** Id of the waiting session. */
  readonly sessionId: string;
  /** Place in line: 1 is served next, then 2, and so on. */
  readonly position: number;
  /**
   * Since when it waits, in milliseconds since the Unix epoch, on the clock {@link LockWaiter.sinceSource}
   * names (the waiter stamps it into its place where the server keeps no time). Absent when the place
   * carries no time (written by an older version of the backend).
   */
  readonly since?: number;
  /** Whose clock {@link LockWaiter.since} was read on; present exactly when `since` is. */
  readonly sinceSource?: HolderTimeSource;
}

/** Options for {@link LockProvider.getHolder}. */
export interface HolderReadOptions {
  /** Abandons the read. */
  signal?: AbortSignal;
  /**
   * `false`: the caller has no use for the holder's times ({@link LockHolder.acquiredAt}, the remaining
   * lease), and the backend may leave them out where they cost extra requests (Consul, etcd). Default `true`.
   */
  times?: boolean;
}

/** Options for {@link LockProvider.watch}. */
export interface WatchOptions {
  /** Ends the iteration. */
  signal?: AbortSignal;
  /** Polling interval for backends without native watch (jittered), from 1 ms to 24 h. */
  pollIntervalMs?: number;
  /** `false`: the holders' times may be left out where they cost extra requests (see {@link HolderReadOptions}). */
  times?: boolean;
}

/**
 * A lock backend. Create one per process with `createLockProvider()`; open one session per worker.
 */
export interface LockProvider extends AsyncDisposable {
  /** Registered backend name (`memory`, `consul`, `dynamodb`, or a custom one). */
  readonly backend: string;
  /** What this backend supports beyond the required contract. */
  readonly capabilities: LockCapabilities;
  /** The clock the provider measures time with. */
  readonly clock: Clock;
  /** Opens a session and starts renewing it. Rejects with a typed error if the backend is unreachable. */
  openSession(options?: SessionOptions): Promise<LockSession>;
  /** The current holder of `key`, or `null` when nobody holds it. A consistent read. */
  getHolder(key: string, options?: HolderReadOptions): Promise<LockHolder | null>;
  /**
   * The holder of `key` now, then again each time it changes. Intermediate states may be coalesced, but
   * the latest state is always delivered and an older state never follows a newer one. Ends when `signal`
   * aborts. Errors are retried with jittered backoff; only a permission error ends the iteration (thrown).
   */
  watch(key: string, options?: WatchOptions): AsyncIterable<LockHolder | null>;
  /** Lists held locks whose key starts with `prefix` (capability `list`). */
  list?(prefix?: string): Promise<LockHolder[]>;
  /**
   * The blocking acquisitions waiting for `key`, in the order the backend will serve them (capability
   * `waiters`, only on backends with `fairQueue`). A waiter whose session died may still be listed until the
   * backend drops its place (within the backend's expiry bound); one that gave up (its signal aborted, its
   * timeout passed) leaves at once. Empty when nobody waits. A consistent read, like `getHolder`.
   */
  waiters?(key: string, options?: { signal?: AbortSignal }): Promise<LockWaiter[]>;
  /**
   * Operator escape hatch (capability `forceRelease`): clears the holder of `key` regardless of owner. The
   * holder is not told until its next renewal or monitor check; its fence stays valid in the meantime.
   */
  forceRelease?(key: string): Promise<boolean>;
  /** Destroys every session this provider opened and closes connections. Idempotent. */
  close(): Promise<void>;
}
