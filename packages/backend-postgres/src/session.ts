import {
  AbstractLockSession,
  type Acquisition,
  type Clock,
  KeepAlive,
  LeaseLostError,
  type LockHolder,
  type ManagedLease,
  type TryAcquireOptions,
  type WatchOptions,
} from '@baton/core';
import { BACKEND, sessionGone } from './errors.js';
import { toFence } from './rows.js';
import type { LockStatements } from './statements.js';

/** What a {@link PgLockSession} needs from its provider. */
export interface PgLockSessionInit {
  id: string;
  ttlMs: number;
  /** Monotonic time at which the session's INSERT was sent. */
  startedAt: number;
  clock: Clock;
  sql: LockStatements;
  /** Runs one statement, mapping errors to typed baton errors. */
  query: (text: string, values: unknown[], what: string) => Promise<Record<string, unknown>[]>;
  watch: (key: string, options: WatchOptions) => AsyncIterable<LockHolder | null>;
  /** Called after each good renewal (the provider sweeps expired rows, at most once per TTL). */
  renewed: () => void;
  report: (error: unknown, context: string) => void;
}

/**
 * One session: a row in `sessions` whose `expires_at` the database's clock judges, pushed forward every
 * TTL/2 by core's {@link KeepAlive}; its locks are rows in `locks` that name it.
 *
 * - **Acquire**: one statement (`acquire()`), serialised per key by an advisory transaction lock.
 * - **Release**: one statement (`release()`): deletes the row only if it still names this session and
 *   this fence, so a late or retried release never frees a newer holder's key.
 * - **Renew**: one statement that also lists the rows naming this session: a lease whose row is gone or
 *   was taken is marked lost, and a row this session does not know of (an acquisition whose answer was
 *   lost in transport, a release that failed) is released in the background.
 */
export class PgLockSession extends AbstractLockSession<undefined> {
  readonly #init: PgLockSessionInit;
  readonly #keepAlive: KeepAlive;
  /** Keys with an acquisition in flight: their rows may name us before we know it. */
  readonly #acquiring = new Map<string, number>();

  constructor(init: PgLockSessionInit) {
    super({ id: init.id, ttlMs: init.ttlMs, clock: init.clock, watch: init.watch, nativeWatch: true });
    this.#init = init;
    this.#keepAlive = new KeepAlive({
      ttlMs: init.ttlMs,
      startedAt: init.startedAt,
      clock: init.clock,
      renew: () => this.#renew(),
      onLost: (error) => this.markSessionLost(error),
      onRenewError: (error) => init.report(error, `renew session ${this.id}`),
    }).start();
  }

  /**
   * Test hook: behave like a crashed process: renewals stop, nothing is released; the database expires
   * the session on its own. The session's signal does not abort.
   * @internal
   */
  abandon(): void {
    this.#keepAlive.stop();
    this.haltWaiting();
  }

  override tryAcquire(key: string, options: TryAcquireOptions = {}): Promise<ManagedLease<undefined> | null> {
    this.#acquiring.set(key, (this.#acquiring.get(key) ?? 0) + 1);
    const attempt = super.tryAcquire(key, options);
    const settled = () => {
      const left = (this.#acquiring.get(key) ?? 1) - 1;
      if (left > 0) this.#acquiring.set(key, left);
      else this.#acquiring.delete(key);
    };
    attempt.then(settled, settled);
    return attempt;
  }

  protected async acquireOnce(
    key: string,
    options: TryAcquireOptions,
  ): Promise<Acquisition<undefined> | null> {
    const [row] = await this.#init.query(
      this.#init.sql.acquire,
      [this.id, key, options.value ?? null, Math.ceil(options.lockAtLeastForMs ?? 0)],
      `acquire '${key}'`,
    );
    if (!row?.alive) {
      const error = sessionGone(this.id);
      this.markSessionLost(error);
      throw error;
    }
    if (row.fence === null || row.fence === undefined) return null;
    return { fence: toFence(row.fence), value: options.value, state: undefined };
  }

  protected async releaseOnce(lease: ManagedLease<undefined>): Promise<boolean> {
    const [row] = await this.#init.query(
      this.#init.sql.release,
      [this.id, lease.key, String(lease.fence)],
      `release '${lease.key}'`,
    );
    return row?.released === true;
  }

  protected async publishOnce(lease: ManagedLease<undefined>, value: string): Promise<void> {
    const rows = await this.#init.query(
      this.#init.sql.publish,
      [lease.key, this.id, String(lease.fence), value],
      `publish on '${lease.key}'`,
    );
    if (rows.length > 0) return;
    const error = new LeaseLostError(`lease '${lease.key}' is no longer held by session ${this.id}`, {
      backend: BACKEND,
    });
    lease.markLost(error);
    throw error;
  }

  protected async endSession(): Promise<void> {
    this.#keepAlive.stop();
    // A lost session's rows stay until its lock-delay is over; the sweep removes them then.
    if (this.signal.aborted) return;
    await this.#init.query(this.#init.sql.endSession, [this.id], `end session ${this.id}`);
  }

  async #renew(): Promise<void> {
    const sentAt = this.clock.monotonicNow();
    const [row] = await this.#init.query(this.#init.sql.renew, [this.id], `renew session ${this.id}`);
    if (!row?.alive) throw sessionGone(this.id);
    const held = new Map<string, string>();
    for (const [key, fence] of row.held as Array<[string, string]>) held.set(key, fence);
    for (const lease of this.leases()) {
      if (lease.acquiredAt < sentAt && held.get(lease.key) !== String(lease.fence)) {
        lease.markLost(
          new LeaseLostError(`lease '${lease.key}' was taken away at the server`, { backend: BACKEND }),
        );
      }
    }
    const known = new Set(this.leases().map((lease) => lease.key));
    for (const [key, fence] of held) {
      if (!known.has(key) && !this.#acquiring.has(key)) this.#releaseOrphan(key, fence);
    }
    this.#init.renewed();
  }

  /** A row that names this session but no lease of it: an answer lost in transport. Frees it. */
  #releaseOrphan(key: string, fence: string): void {
    this.#init
      .query(this.#init.sql.release, [this.id, key, fence], `release '${key}'`)
      .catch((error: unknown) => this.#init.report(error, `release '${key}'`));
  }
}
