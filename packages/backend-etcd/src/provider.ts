import {
  type Clock,
  ClosedError,
  checkDuration,
  type LockCapabilities,
  type LockHolder,
  type LockProvider,
  type SessionOptions,
  systemClock,
  validateKey,
  type WatchOptions,
} from '@baton/core';
import { ETCD_MIN_TTL_MS, type EtcdConfig, etcdDurationBounds } from './config.js';
import { BACKEND } from './errors.js';
import { EtcdKeys } from './keys.js';
import { EtcdRpc, leaseHex } from './rpc.js';
import { EtcdSession } from './session.js';
import { etcdWatch, holderOf } from './watch.js';

/** TLS material for `https` endpoints (PEM). */
export interface EtcdTlsOptions {
  /** CA bundle that signed the servers' certificates; defaults to Node's trusted roots. */
  ca?: Buffer | undefined;
  /** Client certificate and key, when the servers verify clients (`--client-cert-auth`). */
  cert?: Buffer | undefined;
  key?: Buffer | undefined;
}

/**
 * Options of {@link EtcdLockProvider}: the validated config (`etcdConfigSchema.parse({...})` fills in every
 * default) with TLS material instead of file paths.
 */
export type EtcdLockProviderOptions = Omit<EtcdConfig, 'caFile' | 'certFile' | 'keyFile'> & {
  tls?: EtcdTlsOptions | undefined;
  clock?: Clock | undefined;
  /** Observes errors retried in the background (renewals, deferred releases). */
  onError?: ((error: unknown, context: string) => void) | undefined;
};

/**
 * The etcd lock provider: one etcd lease per baton session, one key per lock under a prefix, fencing tokens
 * from etcd's global revision. See `docs/backends/etcd.md` for guarantees, failure model, round trips and
 * the role it needs.
 */
export class EtcdLockProvider implements LockProvider {
  readonly backend = BACKEND;
  readonly capabilities: LockCapabilities = {
    nativeWatch: true,
    minTtlMs: ETCD_MIN_TTL_MS,
    lockDelay: true,
    list: true,
    forceRelease: true,
    fairQueue: true,
  };
  readonly clock: Clock;
  /** The etcd key prefix of every lock. */
  readonly prefix: string;
  readonly #options: EtcdLockProviderOptions;
  readonly #rpc: EtcdRpc;
  readonly #keys: EtcdKeys;
  readonly #sessions = new Set<EtcdSession>();
  readonly #closing = new AbortController();
  #closed = false;

  constructor(options: EtcdLockProviderOptions) {
    this.#options = options;
    this.clock = options.clock ?? systemClock;
    this.prefix = options.prefix;
    this.#keys = new EtcdKeys(options.prefix);
    checkDuration('ttlMs', options.ttlMs, etcdDurationBounds.ttlMs);
    checkDuration('lockDelayMs', options.lockDelayMs, etcdDurationBounds.lockDelayMs);
    checkDuration('requestTimeoutMs', options.requestTimeoutMs, etcdDurationBounds.requestTimeoutMs);
    this.#rpc = new EtcdRpc({
      endpoints: options.endpoints,
      auth: options.auth,
      tls: options.tls,
      requestTimeoutMs: options.requestTimeoutMs,
      prefix: options.prefix,
    });
  }

  /**
   * Grants the session lease (TTL rounded up to whole seconds; etcd may raise it to its floor, and the
   * session then uses what etcd granted) and, with a lock-delay, the delay lease, and starts renewing them
   * every TTL/2. Rejects with `UNAVAILABLE` when etcd cannot be reached, `PERMISSION_DENIED` when
   * authentication fails.
   */
  async openSession(options: SessionOptions = {}): Promise<EtcdSession> {
    this.#assertOpen();
    const ttlMs = checkDuration('ttlMs', options.ttlMs ?? this.#options.ttlMs, etcdDurationBounds.ttlMs);
    const lockDelayMs = checkDuration(
      'lockDelayMs',
      options.lockDelayMs ?? this.#options.lockDelayMs,
      etcdDurationBounds.lockDelayMs,
    );
    const startedAt = this.clock.monotonicNow();
    const main = await this.#rpc.grant(Math.ceil(ttlMs / 1_000));
    let delayLeaseId: string | undefined;
    if (lockDelayMs > 0) {
      try {
        delayLeaseId = (await this.#rpc.grant(main.ttlSeconds + Math.ceil(lockDelayMs / 1_000))).id;
      } catch (error) {
        await this.#rpc.revoke(main.id).catch(() => undefined);
        throw error;
      }
    }
    const session = new EtcdSession({
      id: leaseHex(main.id),
      leaseId: main.id,
      delayLeaseId,
      ttlMs: main.ttlSeconds * 1_000,
      startedAt,
      rpc: this.#rpc,
      keys: this.#keys,
      clock: this.clock,
      watch: (key, watchOptions) => this.watch(key, watchOptions),
      requestTimeoutMs: this.#options.requestTimeoutMs,
      onError: this.#options.onError,
    });
    this.#sessions.add(session);
    session.signal.addEventListener('abort', () => this.#sessions.delete(session), { once: true });
    if (this.#closed) await session.destroy();
    return session;
  }

  /** The current holder of `key`: one linearizable range read. */
  async getHolder(key: string, _options: { signal?: AbortSignal } = {}): Promise<LockHolder | null> {
    validateKey(key);
    this.#assertOpen();
    const response = await this.#rpc.range(`read '${key}'`, this.#keys.lock(key));
    return holderOf(response.kvs[0], key);
  }

  /** The holder of `key` now and after each change, through etcd watches (see `etcdWatch`). */
  watch(key: string, options: WatchOptions = {}): AsyncIterable<LockHolder | null> {
    validateKey(key);
    this.#assertOpen();
    const signal = options.signal
      ? AbortSignal.any([options.signal, this.#closing.signal])
      : this.#closing.signal;
    return etcdWatch(
      {
        rpc: this.#rpc,
        keys: this.#keys,
        clock: this.clock,
        maxWaitMs: 60_000,
        retryBaseMs: Math.max(10, Math.min(1_000, (options.pollIntervalMs ?? 500) / 2)),
      },
      key,
      signal,
    );
  }

  /** Held locks whose caller key starts with `prefix`: one range read, sorted by key. */
  async list(prefix = ''): Promise<LockHolder[]> {
    this.#assertOpen();
    const { from, to } = this.#keys.lockRange(prefix);
    const response = await this.#rpc.range(`list '${prefix}'`, from, to);
    const holders: LockHolder[] = [];
    for (const kv of response.kvs) {
      const key = this.#keys.callerKey(kv.key);
      const holder = key === undefined ? null : holderOf(kv, key);
      if (holder) holders.push(holder);
    }
    return holders.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /**
   * Operator escape hatch: deletes the key and its lock-delay guard, conditional on the holder read just
   * before (one read, one txn). The holder learns of it when its release resolves `false`; its fence stays
   * valid for fenced writes until a new holder writes with a larger one.
   */
  async forceRelease(key: string): Promise<boolean> {
    validateKey(key);
    this.#assertOpen();
    const lockKey = this.#keys.lock(key);
    const current = (await this.#rpc.range(`read '${key}'`, lockKey)).kvs[0];
    if (!current) return false;
    const response = await this.#rpc.txn(
      `force-release '${key}'`,
      [{ key: lockKey, target: 'Create', result: 'Equal', create_revision: current.create_revision }],
      [{ request_delete_range: { key: lockKey } }, { request_delete_range: { key: this.#keys.guard(key) } }],
    );
    return response.succeeded;
  }

  /** Destroys every open session (releasing their leases cleanly), then closes the connection. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#sessions].map((session) => session.destroy()));
    this.#closing.abort(new ClosedError('etcd lock provider closed'));
    this.#rpc.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #assertOpen(): void {
    if (this.#closed) throw new ClosedError('etcd lock provider is closed');
  }

  /** Keeps credentials out of logs and `util.inspect`. */
  toJSON(): Record<string, unknown> {
    return { backend: this.backend, prefix: this.prefix, capabilities: this.capabilities };
  }
}
