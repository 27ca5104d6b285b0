import {
  AbstractLockProvider,
  type BatonError,
  type Clock,
  ConfigError,
  durationBounds,
  InvalidArgumentError,
  type LockCapabilities,
  type LockHolder,
  type LockWaiter,
  parseSettings,
  quoteForMessage,
  type SessionSettings,
  type SettingsOptions,
  systemClock,
  UnavailableError,
  type WatchOptions,
} from '@baton/core';
import type { z } from 'zod';
import { consulDurationBounds, consulProviderSchema } from './config.js';
import { acquiredAtOf, holderOf, SINCE_SEGMENT, sessionOf, sinceKey } from './entry.js';
import { BACKEND, httpStatusOf } from './errors.js';
import { ConsulHttp } from './http.js';
import { KeyCodec } from './keys.js';
import { LINE_SEGMENT } from './line.js';
import { ConsulSession } from './session.js';
import { HolderTimesCache } from './times-cache.js';
import { consulWatch } from './watch.js';

/** TLS material for an `https` agent address. */
export interface ConsulTlsOptions {
  /** CA bundle (PEM) that signed the agent's certificate; defaults to Node's trusted roots. */
  ca?: string | Buffer;
  /** Client certificate and key (PEM) when the agent verifies clients (`verify_incoming`). */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Host name to verify the agent's certificate against, when it differs from the address. */
  servername?: string;
}

/**
 * Options of {@link ConsulLockProvider}. Every field has a default: the settings of
 * `consulProviderSchema` (prefix, TTL and its floor, lock-delay, behavior, checks, timeouts, ...), and:
 */
export interface ConsulLockProviderOptions extends SettingsOptions<typeof consulProviderSchema> {
  /** Agent address, `http(s)://host:port`. Default `http://127.0.0.1:8500`. */
  address?: string | URL;
  /** ACL token sent as `X-Consul-Token`. Never logged. */
  token?: string;
  /**
   * Where `token` came from, named when Consul rejects it: `CONSUL_HTTP_TOKEN (token)` or
   * `CONSUL_HTTP_TOKEN_FILE (tokenFile)` when configured through the backend definition. Default: `the
   * token option`.
   */
  tokenSource?: string;
  tls?: ConsulTlsOptions;
  clock?: Clock;
  /** Observes errors that are retried in the background (renewals, monitors, deferred releases). */
  onError?: (error: unknown, context: string) => void;
}

const DEFAULT_ADDRESS = 'http://127.0.0.1:8500';

/**
 * The Consul lock provider: one Consul session per baton session, one KV key per lock under a prefix,
 * fencing tokens from Consul's Raft index. See `docs/backends/consul.md` for guarantees, failure model,
 * round trips and the ACL policy it needs.
 */
export class ConsulLockProvider extends AbstractLockProvider<ConsulSession> {
  readonly backend = BACKEND;
  readonly capabilities: LockCapabilities;
  /** The Consul key prefix of every lock. */
  readonly prefix: string;
  readonly #http: ConsulHttp;
  readonly #codec: KeyCodec;
  readonly #settings: z.output<typeof consulProviderSchema>;
  readonly #onError: ConsulLockProviderOptions['onError'];
  /** Ends the sessions' plain watches when the provider closes (the public ones end with the base class's). */
  readonly #closing = new AbortController();
  readonly #times = new HolderTimesCache();

  constructor(options: ConsulLockProviderOptions = {}) {
    const settings = parseSettings(consulProviderSchema, options, 'Consul');
    const { max } = consulDurationBounds.ttlMs;
    super({
      label: 'Consul',
      clock: options.clock ?? systemClock,
      sessionDefaults: settings,
      sessionBounds: {
        ttlMs: durationBounds({ min: Math.min(settings.minTtlMs, max), max }),
        lockDelayMs: consulDurationBounds.lockDelayMs,
      },
    });
    this.#settings = settings;
    this.#onError = options.onError;
    this.#codec = new KeyCodec(settings.prefix);
    this.prefix = this.#codec.prefix;
    let address: URL;
    try {
      address = new URL(String(options.address ?? DEFAULT_ADDRESS));
    } catch (cause) {
      throw new InvalidArgumentError(`invalid Consul address ${quoteForMessage(String(options.address))}`, {
        cause,
      });
    }
    this.capabilities = {
      nativeWatch: true,
      minTtlMs: settings.minTtlMs,
      lockDelay: true,
      list: true,
      forceRelease: true,
      fairQueue: true,
      holderTimes: true,
      waiters: true,
    };
    this.#http = new ConsulHttp({
      address,
      token: options.token,
      tokenSource: options.tokenSource ?? 'the token option',
      ca: options.tls?.ca,
      cert: options.tls?.cert,
      key: options.tls?.key,
      servername: options.tls?.servername,
      datacenter: settings.datacenter,
      requestTimeoutMs: settings.requestTimeoutMs,
      prefix: this.prefix,
    });
  }

  /**
   * Creates a Consul session (`TTL`, `LockDelay`, `Behavior`, `Checks`, `Name`) and starts renewing it
   * every TTL/2. Rejects with `UNAVAILABLE` when the agent cannot be reached, `PERMISSION_DENIED` when the
   * token may not create sessions, `CONFIG_INVALID` when a configured check does not exist.
   */
  protected async startSession(settings: SessionSettings): Promise<ConsulSession> {
    const { ttlMs, lockDelayMs, startedAt } = settings;
    const { behavior, checks } = this.#settings;
    let id: string;
    try {
      id = await this.#http.createSession({
        name: settings.name ?? this.#settings.sessionName,
        ttlMs,
        lockDelayMs,
        behavior,
        checks,
      });
    } catch (error) {
      throw sessionCreateError(error as BatonError, checks);
    }
    return new ConsulSession({
      id,
      ttlMs,
      lockDelayMs,
      startedAt,
      http: this.#http,
      codec: this.#codec,
      clock: this.clock,
      // Waiting needs no times: the session's watch costs one blocking query per change, nothing more.
      watch: (key, watchOptions) => this.watch(key, { ...watchOptions, times: false }),
      monitorAfterMs: this.#settings.monitorAfterMs ?? ttlMs,
      watchWaitMs: this.#settings.watchWaitMs,
      requestTimeoutMs: this.#settings.requestTimeoutMs,
      onError: this.#onError,
    });
  }

  /**
   * The current holder of `key`: one `GET /v1/kv/<key>?consistent`, then, when it is held, the holder's
   * `.since` entry and its session's TTL (`/v1/session/info`), in parallel.
   */
  protected async readHolder(
    key: string,
    signal: AbortSignal | undefined,
    options: { times: boolean },
  ): Promise<LockHolder | null> {
    const { entry } = await this.#http.getKey(this.#codec.encode(key), { consistent: true, signal });
    const holder = holderOf(entry, this.#codec, key);
    return holder && options.times ? this.#withTimes(holder, signal) : holder;
  }

  /**
   * The holder of `key` now and after each change, through blocking queries (see `consulWatch`). Ends when
   * `signal` aborts or the provider closes.
   */
  protected watchKey(
    key: string,
    signal: AbortSignal,
    options: WatchOptions,
  ): AsyncIterable<LockHolder | null> {
    return consulWatch(
      {
        http: this.#http,
        codec: this.#codec,
        clock: this.clock,
        waitMs: this.#settings.watchWaitMs,
        retryBaseMs: Math.max(10, Math.min(1_000, (options.pollIntervalMs ?? 500) / 2)),
        complete: options.times === false ? undefined : (holder) => this.#withTimes(holder, signal),
      },
      key,
      signal,
    );
  }

  /**
   * Held locks whose caller key starts with `prefix`: one `GET /v1/kv/<prefix>?recurse&consistent` (it
   * returns the `.since` entries too), then one `/v1/session/info` per holding session, in parallel.
   */
  protected async listHolders(prefix: string): Promise<LockHolder[]> {
    const { entries } = await this.#http.listKeys(this.#codec.encodePrefix(prefix), { consistent: true });
    const byKey = new Map(entries.map((entry) => [entry.Key, entry]));
    const holders: LockHolder[] = [];
    for (const entry of entries) {
      const sessionId = sessionOf(entry);
      const since = sessionId === undefined ? undefined : byKey.get(sinceKey(entry.Key, sessionId));
      const holder = holderOf(entry, this.#codec, undefined, since);
      if (holder?.key.startsWith(prefix)) holders.push(holder);
    }
    const ttls = new Map<string, Promise<number | undefined>>();
    for (const { sessionId } of holders) {
      if (!ttls.has(sessionId)) ttls.set(sessionId, this.#remainingAtMost(sessionId, undefined));
    }
    return Promise.all(
      holders.map(async (holder) => withRemaining(holder, await ttls.get(holder.sessionId))),
    );
  }

  /**
   * The blocking waiters of `key`, first in line first: one `GET <key>/.wait/?recurse&consistent`. Places
   * whose session Consul invalidated (no `Session` any more) no longer count and are not listed.
   */
  waiters(key: string, options: { signal?: AbortSignal } = {}): Promise<LockWaiter[]> {
    return this.keyCall(key, async () => {
      const dir = this.#codec.encode(key) + LINE_SEGMENT;
      const { entries } = await this.#http.listKeys(dir, { consistent: true, signal: options.signal });
      const live = entries.filter((entry) => sessionOf(entry) !== undefined && entry.Key.startsWith(dir));
      return live
        .sort((a, b) => a.CreateIndex - b.CreateIndex)
        .map((entry, i) => {
          const since = Number(entry.Value);
          return {
            sessionId: sessionOf(entry)!,
            position: i + 1,
            ...(entry.Value && Number.isSafeInteger(since) ? { since, sinceSource: 'holder' as const } : {}),
          };
        });
    });
  }

  /** `holder` with its acquisition time (its `.since` entry) and remaining-lease bound, read in parallel. */
  /**
   * `holder` with its acquisition time (its `.since` entry) and remaining-lease bound, read in parallel the
   * first time this provider sees the acquisition and the session, from its cache after that.
   */
  async #withTimes(holder: LockHolder, signal: AbortSignal | undefined): Promise<LockHolder> {
    const consulKey = this.#codec.encode(holder.key);
    const id = HolderTimesCache.acquisition(consulKey, holder.sessionId, holder.fence);
    const [acquiredAt, remaining] = await Promise.all([
      this.#times.acquired.has(id)
        ? this.#times.acquired.get(id)
        : this.#http
            .getKey(sinceKey(consulKey, holder.sessionId), { consistent: true, signal })
            .then(({ entry }) => {
              const at = acquiredAtOf({ consulKey, ...holder }, entry) ?? null;
              this.#times.acquired.set(id, at);
              return at;
            }),
      this.#remainingAtMost(holder.sessionId, signal),
    ]);
    return withRemaining(
      acquiredAt == null ? holder : { ...holder, acquiredAt, acquiredAtSource: 'holder' },
      remaining,
    );
  }

  /**
   * Consul reports no remaining time, only the session's TTL, and may wait up to twice the TTL after the last
   * renewal before it invalidates the session: 2 × TTL is the bound. 0 when the session is gone already.
   * Read every time (never cached): Consul may raise a session's TTL when it renews it.
   */
  async #remainingAtMost(sessionId: string, signal: AbortSignal | undefined): Promise<number | undefined> {
    const ttl = await this.#http.sessionTtlMs(sessionId, { consistent: true, signal });
    return ttl === null ? 0 : ttl === undefined ? undefined : ttl * 2;
  }

  /**
   * Operator escape hatch: deletes the key if a session holds it (`DELETE ?cas=<ModifyIndex>`, so a
   * concurrent change is never clobbered). The published value goes with it and no lock-delay applies.
   * The holder learns of it from its key monitor (leases held longer than `monitorAfterMs`) or when its
   * release returns `false`; until then it may still believe it holds the lock, and its fence stays valid
   * for fenced writes until a new holder writes with a larger one.
   */
  protected async forceReleaseKey(key: string): Promise<boolean> {
    const consulKey = this.#codec.encode(key);
    for (let attempt = 0; attempt < 5; attempt++) {
      const { entry } = await this.#http.getKey(consulKey, { consistent: true });
      if (!entry || !sessionOf(entry)) return false;
      if (await this.#http.deleteKey(consulKey, { cas: entry.ModifyIndex })) {
        // Best effort: a `.since` entry left behind is never reported (its index is no later holder's fence)
        // and goes with the next release of the key, or with its session.
        await this.#http
          .txn(`forget when '${key}' was taken`, [{ Verb: 'delete-tree', Key: consulKey + SINCE_SEGMENT }])
          .catch(() => undefined);
        return true;
      }
    }
    throw new UnavailableError(`Consul: force-release '${key}' gave up: the key kept changing`, {
      backend: BACKEND,
    });
  }

  protected override closeConnections(): void {
    this.#closing.abort();
    this.#http.close();
  }

  /** Keeps the token out of logs and `util.inspect`. */
  toJSON(): Record<string, unknown> {
    return { backend: this.backend, prefix: this.prefix, capabilities: this.capabilities };
  }
}

/** Session-create failures Consul reports as 500 that retrying will not fix. */
function sessionCreateError(error: BatonError, checks: readonly string[]): BatonError {
  const http = httpStatusOf(error.cause);
  if (http?.status !== 500) return error;
  const options = { cause: error, backend: BACKEND };
  if (/missing check/i.test(http.body)) {
    return new ConfigError(
      'checks',
      `Consul: cannot create a session bound to checks [${checks.join(', ')}]: ${http.body}. ` +
        "Fix: set BATON_CONSUL_CHECKS (checks) to health checks registered on the agent's node, or leave it empty.",
      options,
    );
  }
  if (/invalid session ttl|session ttl .* invalid|invalid behavior|lockdelay|lock delay/i.test(http.body)) {
    return new InvalidArgumentError(`Consul rejected the session settings: ${http.body}`, options);
  }
  return error;
}

/** `holder` with its remaining-lease bound, when Consul gave one. */
function withRemaining(holder: LockHolder, remaining: number | undefined): LockHolder {
  return remaining === undefined ? holder : { ...holder, leaseRemainingAtMostMs: remaining };
}
