import {
  AbstractLockProvider,
  type Clock,
  type LockCapabilities,
  type LockHolder,
  parseSettings,
  type SessionSettings,
  type SettingsOptions,
  sessionBoundsOf,
  systemClock,
  type WatchOptions,
} from '@baton/core';
import { ETCD_MIN_TTL_MS, etcdSettingsSchema } from './config.js';
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
 * Options of {@link EtcdLockProvider}: the settings of `etcdSettingsSchema` (prefix, TTL, lock-delay,
 * request timeout; each with its default), where the servers are, and TLS material instead of file paths.
 */
export type EtcdLockProviderOptions = SettingsOptions<typeof etcdSettingsSchema> & {
  /** Origins of the etcd client URLs, such as `http://127.0.0.1:2379`. */
  endpoints: string[];
  /** User and password, when etcd has authentication enabled. */
  auth?: { username: string; password: string } | undefined;
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
export class EtcdLockProvider extends AbstractLockProvider<EtcdSession> {
  readonly backend = BACKEND;
  readonly capabilities: LockCapabilities = {
    nativeWatch: true,
    minTtlMs: ETCD_MIN_TTL_MS,
    lockDelay: true,
    list: true,
    forceRelease: true,
    fairQueue: true,
  };
  /** The etcd key prefix of every lock. */
  readonly prefix: string;
  readonly #requestTimeoutMs: number;
  readonly #onError: EtcdLockProviderOptions['onError'];
  readonly #rpc: EtcdRpc;
  readonly #keys: EtcdKeys;

  constructor(options: EtcdLockProviderOptions) {
    const settings = parseSettings(etcdSettingsSchema, options, 'etcd');
    super({
      label: 'etcd',
      clock: options.clock ?? systemClock,
      sessionDefaults: settings,
      sessionBounds: sessionBoundsOf(etcdSettingsSchema),
    });
    this.prefix = settings.prefix;
    this.#requestTimeoutMs = settings.requestTimeoutMs;
    this.#onError = options.onError;
    this.#keys = new EtcdKeys(settings.prefix);
    this.#rpc = new EtcdRpc({
      endpoints: options.endpoints,
      auth: options.auth,
      tls: options.tls,
      requestTimeoutMs: settings.requestTimeoutMs,
      prefix: settings.prefix,
    });
  }

  /**
   * Grants the session lease (TTL rounded up to whole seconds; etcd may raise it to its floor, and the
   * session then uses what etcd granted) and, with a lock-delay, the delay lease, and starts renewing them
   * every TTL/2. Rejects with `UNAVAILABLE` when etcd cannot be reached, `PERMISSION_DENIED` when
   * authentication fails.
   */
  protected async startSession(settings: SessionSettings): Promise<EtcdSession> {
    const { ttlMs, lockDelayMs, startedAt } = settings;
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
    return new EtcdSession({
      id: leaseHex(main.id),
      leaseId: main.id,
      delayLeaseId,
      ttlMs: main.ttlSeconds * 1_000,
      startedAt,
      rpc: this.#rpc,
      keys: this.#keys,
      clock: this.clock,
      watch: (key, watchOptions) => this.watch(key, watchOptions),
      requestTimeoutMs: this.#requestTimeoutMs,
      onError: this.#onError,
    });
  }

  /** The current holder of `key`: one linearizable range read. */
  protected async readHolder(key: string): Promise<LockHolder | null> {
    const response = await this.#rpc.range(`read '${key}'`, this.#keys.lock(key));
    return holderOf(response.kvs[0], key);
  }

  /** The holder of `key` now and after each change, through etcd watches (see `etcdWatch`). */
  protected watchKey(
    key: string,
    signal: AbortSignal,
    options: WatchOptions,
  ): AsyncIterable<LockHolder | null> {
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

  /** Held locks whose caller key starts with `prefix`: one range read. */
  protected async listHolders(prefix: string): Promise<LockHolder[]> {
    const { from, to } = this.#keys.lockRange(prefix);
    const response = await this.#rpc.range(`list '${prefix}'`, from, to);
    const holders: LockHolder[] = [];
    for (const kv of response.kvs) {
      const key = this.#keys.callerKey(kv.key);
      const holder = key === undefined ? null : holderOf(kv, key);
      if (holder) holders.push(holder);
    }
    return holders;
  }

  /**
   * Operator escape hatch: deletes the key and its lock-delay guard, conditional on the holder read just
   * before (one read, one txn). The holder learns of it when its release resolves `false`; its fence stays
   * valid for fenced writes until a new holder writes with a larger one.
   */
  protected async forceReleaseKey(key: string): Promise<boolean> {
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

  protected override closeConnections(): void {
    this.#rpc.close();
  }

  /** Keeps credentials out of logs and `util.inspect`. */
  toJSON(): Record<string, unknown> {
    return { backend: this.backend, prefix: this.prefix, capabilities: this.capabilities };
  }
}
