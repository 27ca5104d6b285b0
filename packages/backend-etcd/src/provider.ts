import {
  AbstractLockProvider,
  type Clock,
  type LockCapabilities,
  type LockHolder,
  type LockWaiter,
  parseSettings,
  type SessionSettings,
  type SettingsOptions,
  sessionBoundsOf,
  systemClock,
  type WatchOptions,
} from '@baton/core';
import type { IKeyValue } from 'etcd3';
import { ETCD_MIN_TTL_MS, etcdSettingsSchema } from './config.js';
import { BACKEND } from './errors.js';
import { EtcdKeys } from './keys.js';
import { EtcdRpc, leaseHex, revision } from './rpc.js';
import { EtcdSession } from './session.js';
import { etcdWatch, type HolderRead, holderOf } from './watch.js';

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
    holderTimes: true,
    waiters: true,
  };
  /** The etcd key prefix of every lock. */
  readonly prefix: string;
  readonly #requestTimeoutMs: number;
  readonly #onError: EtcdLockProviderOptions['onError'];
  readonly #rpc: EtcdRpc;
  readonly #keys: EtcdKeys;
  /** Ends the sessions' plain watches when the provider closes (the public ones end with the base class's). */
  readonly #closing = new AbortController();

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
      // Waiting needs no remaining lease: the sessions' watch sends no LeaseTimeToLive.
      watch: (key, watchOptions) => this.watch(key, { ...watchOptions, times: false }),
      requestTimeoutMs: this.#requestTimeoutMs,
      onError: this.#onError,
    });
  }

  /**
   * The current holder of `key`: one txn reading the lock key and its acquisition time, then, when it is
   * held, one `LeaseTimeToLive` of the holder's lease.
   */
  protected async readHolder(
    key: string,
    _signal: AbortSignal | undefined,
    options: { times: boolean },
  ): Promise<LockHolder | null> {
    const { holder } = await this.#read(key);
    return holder && options.times ? this.#withLease(holder) : holder;
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
        read: (k) => this.#read(k),
        complete: async (holder) => (options.times === false ? holder : this.#withLease(holder)),
        maxWaitMs: 60_000,
        retryBaseMs: Math.max(10, Math.min(1_000, (options.pollIntervalMs ?? 500) / 2)),
      },
      key,
      signal,
    );
  }

  /**
   * Held locks whose caller key starts with `prefix`: one txn reading the lock keys and their acquisition
   * times, then one `LeaseTimeToLive` per holding session (in parallel).
   */
  protected async listHolders(prefix: string): Promise<LockHolder[]> {
    const locks = this.#keys.lockRange(prefix);
    const times = this.#keys.sinceRange(prefix);
    const response = await this.#rpc.txn(
      `list '${prefix}'`,
      [],
      [
        { request_range: { key: locks.from, range_end: locks.to } },
        { request_range: { key: times.from, range_end: times.to } },
      ],
    );
    const since = new Map<string, IKeyValue>();
    for (const kv of response.responses[1]?.response_range.kvs ?? []) {
      const key = this.#keys.sinceKey(kv.key);
      if (key !== undefined) since.set(key, kv);
    }
    const holders: LockHolder[] = [];
    for (const kv of response.responses[0]?.response_range.kvs ?? []) {
      const key = this.#keys.callerKey(kv.key);
      const holder = key === undefined ? null : holderOf(kv, key, since.get(key));
      if (holder) holders.push(holder);
    }
    const leases = new Map<string, Promise<number>>();
    for (const holder of holders) {
      if (!leases.has(holder.sessionId)) leases.set(holder.sessionId, this.#remainingAtMost(holder));
    }
    return Promise.all(
      holders.map(async (holder) => ({
        ...holder,
        leaseRemainingAtMostMs: await leases.get(holder.sessionId)!,
      })),
    );
  }

  /**
   * The line of waiters of `key`, oldest place first (one range read). Places of dead sessions go with their
   * lease, so only live ones are listed.
   */
  waiters(key: string, _options: { signal?: AbortSignal } = {}): Promise<LockWaiter[]> {
    return this.keyCall(key, async () => {
      const { from, to } = this.#keys.lineRange(key);
      const response = await this.#rpc.range(`read the line of '${key}'`, from, to);
      return [...response.kvs]
        .sort((a, b) => revision(a.create_revision) - revision(b.create_revision))
        .map((kv, i) => {
          const since = Number(kv.value.toString('utf8'));
          return {
            sessionId: leaseHex(kv.lease),
            position: i + 1,
            ...(kv.value.length > 0 && Number.isSafeInteger(since)
              ? { since, sinceSource: 'holder' as const }
              : {}),
          };
        });
    });
  }

  /** One txn: the lock key and its acquisition time, at one revision. */
  async #read(key: string): Promise<HolderRead> {
    const response = await this.#rpc.txn(
      `read '${key}'`,
      [],
      [{ request_range: { key: this.#keys.lock(key) } }, { request_range: { key: this.#keys.since(key) } }],
    );
    const lock = response.responses[0]?.response_range.kvs[0];
    const since = response.responses[1]?.response_range.kvs[0];
    return { holder: holderOf(lock, key, since), revision: response.header.revision };
  }

  async #withLease(holder: LockHolder): Promise<LockHolder> {
    return { ...holder, leaseRemainingAtMostMs: await this.#remainingAtMost(holder) };
  }

  /**
   * What etcd says is left of the holder's session lease, as an upper bound: etcd reports whole seconds
   * rounded down (the lease "will expire in under TTL+1 seconds"); 0 when the lease is already gone.
   */
  async #remainingAtMost(holder: LockHolder): Promise<number> {
    const lease = await this.#rpc.timeToLive(BigInt(`0x${holder.sessionId}`).toString());
    return lease ? (lease.ttlSeconds + 1) * 1_000 : 0;
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
      [
        { request_delete_range: { key: lockKey } },
        { request_delete_range: { key: this.#keys.guard(key) } },
        { request_delete_range: { key: this.#keys.since(key) } },
      ],
    );
    return response.succeeded;
  }

  protected override closeConnections(): void {
    this.#closing.abort();
    this.#rpc.close();
  }

  /** Keeps credentials out of logs and `util.inspect`. */
  toJSON(): Record<string, unknown> {
    return { backend: this.backend, prefix: this.prefix, capabilities: this.capabilities };
  }
}
