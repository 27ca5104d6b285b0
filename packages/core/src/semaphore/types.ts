import type { LockProvider, LockSession } from '../lock.js';

/** Options of {@link semaphore}. */
export interface SemaphoreOptions {
  /**
   * Most permits valid at once, a whole number from 1 to {@link MAX_SEMAPHORE_LIMIT}. Every process using
   * the same semaphore name must use the same limit; one that notices another limit refuses with
   * `CONFIG_INVALID` (field `limit`).
   */
  limit: number;
}

/** Options of {@link Semaphore.tryAcquire}. */
export interface PermitOptions {
  /** Your own text published with the permit (readable through {@link Semaphore.holders}). */
  value?: string;
}

/** Options of the blocking {@link Semaphore.acquire}. */
export interface AcquirePermitOptions extends PermitOptions {
  /** Stop waiting: the promise rejects with `ABORTED` and no permit is left behind. */
  signal?: AbortSignal;
  /** Give up after this long (0 to 365 days): rejects with `TIMEOUT`. Unlimited when omitted. */
  timeoutMs?: number;
}

/**
 * One of a semaphore's `limit` permits: a held lock on one slot key (`<name>/slot/<i>`). It lives and dies
 * with the session that took it (renewed with it, lost with it).
 *
 * While {@link Permit.signal} is not aborted, at most `limit` permits of the semaphore are valid. A holder
 * that is paused past its session's expiry may still act after another process got its slot: send
 * {@link Permit.key} and {@link Permit.fence} with every write, so the resource keeps the highest fence per
 * slot key and rejects the older holder.
 */
export interface Permit extends AsyncDisposable {
  /** The semaphore's name. */
  readonly name: string;
  /** The semaphore's limit this permit was taken under. */
  readonly limit: number;
  /** Slot index, from 0 to `limit - 1`. */
  readonly slot: number;
  /** The slot's lock key, `<name>/slot/<slot>`: the scope of {@link Permit.fence}. */
  readonly key: string;
  /** The slot lock's fencing token: strictly greater than every earlier holder's fence of the same slot. */
  readonly fence: number;
  /** The session holding the permit. */
  readonly sessionId: string;
  /** What the holder published with {@link PermitOptions.value}. */
  readonly value: string | undefined;
  /** Aborts when the permit ends: `LEASE_LOST` when it was lost, `LEASE_RELEASED` after release. */
  readonly signal: AbortSignal;
  /**
   * Gives the permit back. Idempotent. Resolves `true` when this call released it, `false` when it had
   * already been lost (never frees a slot someone else holds now). Rejects only with a transport error; the
   * slot is then freed when the session ends or expires.
   */
  release(): Promise<boolean>;
}

/** A permit as the backend reports it, for {@link Semaphore.holders}. */
export interface PermitHolder {
  readonly slot: number;
  readonly key: string;
  readonly sessionId: string;
  readonly fence: number;
  /** The limit the holder took the permit under (`undefined` when the slot holds something else). */
  readonly limit: number | undefined;
  readonly value: string | undefined;
}

/**
 * A counting semaphore shared by every process that uses the same name on the same lock backend: at most
 * `limit` permits are valid at once. Built only on the {@link LockProvider} contract.
 */
export interface Semaphore {
  readonly provider: LockProvider;
  readonly name: string;
  readonly limit: number;
  /**
   * Tries every slot once (from a random one, so contenders spread). Resolves `null` when all are held (or
   * in a lock-delay window). Rejects with `CONFIG_INVALID` when it sees a holder that uses another limit,
   * with a transport error otherwise (never reported as `null`).
   */
  tryAcquire(session: LockSession, options?: PermitOptions): Promise<Permit | null>;
  /**
   * Waits until a permit can be taken: on the backend's watch of every slot where it has one (a release is
   * noticed within one round trip), by jittered polling otherwise; a slot that looks free but is refused
   * (lock-delay) is retried with growing pauses, never waited on forever. Rejects with `ABORTED`, `TIMEOUT`,
   * `SESSION_LOST` / `CLOSED`, `CONFIG_INVALID` (limit mismatch) or a backend error.
   */
  acquire(session: LockSession, options?: AcquirePermitOptions): Promise<Permit>;
  /**
   * Current holders of the slots, in slot order: one `list()` where the backend has it (also showing slots
   * beyond this limit that another process holds; on DynamoDB a table scan, so keep it to operator tools),
   * one consistent read per slot otherwise.
   */
  holders(options?: { signal?: AbortSignal }): Promise<PermitHolder[]>;
}
