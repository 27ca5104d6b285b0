import {
  AbstractLockSession,
  type Acquisition,
  BatonError,
  type Clock,
  KeepAlive,
  LeaseLostError,
  type LockHolder,
  type ManagedLease,
  ProtocolError,
  reportTo,
  SessionLostError,
  type TryAcquireOptions,
  type WatchOptions,
} from '@baton/core';
import type { RedisClient } from './client.js';
import { BACKEND } from './errors.js';
import type { RedisKeys } from './keys.js';
import { SCRIPTS } from './scripts.js';

/** Per-lease bookkeeping of the Redis backend: the lock key and the acquisition's token. */
export interface RedisLeaseState {
  readonly lockKey: string;
  readonly token: string;
}

/** What a {@link RedisSession} needs from its provider. */
export interface RedisSessionInit {
  id: string;
  ttlMs: number;
  lockDelayMs: number;
  /** Monotonic time at which the session key was written. */
  startedAt: number;
  client: RedisClient;
  keys: RedisKeys;
  clock: Clock;
  watch: (key: string, options: WatchOptions) => AsyncIterable<LockHolder | null>;
  onError?: ((error: unknown, context: string) => void) | undefined;
}

/**
 * One Redis session: a session key with a TTL, renewed by core's {@link KeepAlive} together with every lock
 * the session holds (one script per TTL/2 for all of them).
 *
 * - **Acquire**: one script: refused unless the session key exists; if the lock key is absent, take a fence
 *   and write the lock hash with a fresh token and TTL `ttl + lockDelay`.
 * - **Release**: one script: if the token is still ours, delete the key (or, before `lockAtLeastFor`
 *   ends, keep it until then). A late or repeated release never touches a newer holder's key.
 * - **Lost**: when a renewal finds the session key gone (expired, or Redis restarted empty), the session is
 *   lost; a lock whose token changed or whose holder window passed is lost on its own.
 * - An acquisition or release whose reply was lost (transport error) may have been applied or not: its token
 *   is released in the background at each renewal until Redis answers, so that the key is not blocked until
 *   its TTL and lock-delay run out. Releasing by token never touches a newer holder's key.
 */
export class RedisSession extends AbstractLockSession<RedisLeaseState> {
  readonly #init: RedisSessionInit;
  readonly #keepAlive: KeepAlive;
  /** Tokens of acquisitions this session may still hold without knowing it, with their lock keys. */
  readonly #unsettled = new Map<string, string>();
  #abandoned = false;
  /** Acquisitions made so far: with the session's random id, each acquisition's unique token. */
  #acquisitions = 0;

  constructor(init: RedisSessionInit) {
    super({ id: init.id, ttlMs: init.ttlMs, clock: init.clock, watch: init.watch, nativeWatch: false });
    this.#init = init;
    this.#keepAlive = new KeepAlive({
      ttlMs: init.ttlMs,
      startedAt: init.startedAt,
      clock: init.clock,
      renew: () => this.#renew(),
      onLost: (error) => this.#lose(error),
      onRenewError: (error) => this.#report(error, `renew session ${this.id}`),
    }).start();
  }

  /**
   * Test hook: behave like a crashed process. Renewals stop; nothing is released, so Redis expires the
   * session's keys on its own. The session's signal does not abort.
   * @internal
   */
  abandon(): void {
    this.#abandoned = true;
    this.#keepAlive.stop();
    this.haltWaiting();
  }

  protected async acquireOnce(
    key: string,
    options: TryAcquireOptions,
  ): Promise<Acquisition<RedisLeaseState> | null> {
    const { keys, client, lockDelayMs } = this.#init;
    const lockKey = keys.lock(key);
    const token = `${this.id}.${(++this.#acquisitions).toString(36)}`;
    let reply: unknown;
    try {
      reply = await client.run(
        `acquire '${key}'`,
        SCRIPTS.acquire,
        [lockKey, keys.fence, keys.session(this.id)],
        [
          this.id,
          token,
          Math.ceil(this.ttlMs),
          Math.ceil(lockDelayMs),
          Math.ceil(options.lockAtLeastForMs ?? 0),
          options.value === undefined ? '0' : '1',
          options.value ?? '',
        ],
      );
    } catch (error) {
      if (error instanceof BatonError && error.retryable) this.#unsettled.set(token, lockKey);
      throw error;
    }
    const [status, fence] = Array.isArray(reply) ? (reply as [number, string?]) : [undefined];
    if (status === 0) return null;
    if (status === -1) {
      const error = new SessionLostError(
        `redis no longer knows session ${this.id}: it expired, or the server restarted empty`,
        { backend: BACKEND },
      );
      this.#lose(error);
      throw error;
    }
    const value = Number(fence);
    if (status !== 1 || !Number.isSafeInteger(value) || value <= 0) {
      throw new ProtocolError(`redis: acquire '${key}': unexpected reply ${JSON.stringify(reply)}`, {
        backend: BACKEND,
      });
    }
    return { fence: value, value: options.value, state: { lockKey, token } };
  }

  protected async releaseOnce(lease: ManagedLease<RedisLeaseState>): Promise<boolean> {
    const { lockKey, token } = lease.state;
    try {
      const reply = await this.#init.client.run(
        `release '${lease.key}'`,
        SCRIPTS.release,
        [lockKey],
        [token],
      );
      return reply === 1;
    } catch (error) {
      if (error instanceof BatonError && error.retryable) this.#unsettled.set(token, lockKey);
      throw error;
    }
  }

  protected async publishOnce(lease: ManagedLease<RedisLeaseState>, value: string): Promise<void> {
    const { lockKey, token } = lease.state;
    const reply = await this.#init.client.run(
      `publish on '${lease.key}'`,
      SCRIPTS.publish,
      [lockKey],
      [token, value],
    );
    if (reply === 1) return;
    const error = new LeaseLostError(
      `lease '${lease.key}' is no longer held by session ${this.id} in redis`,
      {
        backend: BACKEND,
      },
    );
    lease.markLost(error);
    throw error;
  }

  protected async endSession(): Promise<void> {
    this.#keepAlive.stop();
    if (this.#abandoned || this.signal.aborted) return;
    await this.#settle().catch(() => undefined);
    await this.#init.client.call(`end session ${this.id}`, (redis) =>
      redis.del(this.#init.keys.session(this.id)),
    );
  }

  /** One renewal: the session key and every held lock in one script; locks no longer held are lost. */
  async #renew(): Promise<void> {
    const leases = this.leases();
    const { client, keys } = this.#init;
    const reply = await client.run(
      `renew session ${this.id}`,
      SCRIPTS.renew,
      [keys.session(this.id), ...leases.map((lease) => lease.state.lockKey)],
      [Math.ceil(this.ttlMs), ...leases.map((lease) => lease.state.token)],
    );
    if (!Array.isArray(reply) || reply[0] === -1) {
      throw new SessionLostError(
        `redis no longer knows session ${this.id}: it expired, or the server restarted empty`,
        { backend: BACKEND },
      );
    }
    for (const position of reply.slice(1) as number[]) {
      leases[position - 1]?.markLost(
        new LeaseLostError(`lease '${leases[position - 1]?.key}' is no longer held by session ${this.id}`, {
          backend: BACKEND,
        }),
      );
    }
    await this.#settle().catch((error: unknown) => this.#report(error, `settle session ${this.id}`));
  }

  /** Releases the acquisitions whose outcome a transport error hid. */
  async #settle(): Promise<void> {
    for (const [token, lockKey] of [...this.#unsettled]) {
      await this.#init.client.run('settle a lost reply', SCRIPTS.release, [lockKey], [token]);
      this.#unsettled.delete(token);
    }
  }

  #lose(error: BatonError): void {
    this.#keepAlive.stop();
    this.markSessionLost(error);
  }

  #report(error: unknown, context: string): void {
    reportTo(this.#init.onError, error, context);
  }
}
