import {
  AbstractLockProvider,
  type BatonError,
  type Clock,
  ConfigError,
  durationBounds,
  InvalidArgumentError,
  type LockCapabilities,
  type LockHolder,
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
import { holderOf, sessionOf } from './entry.js';
import { BACKEND, httpStatusOf } from './errors.js';
import { ConsulHttp } from './http.js';
import { KeyCodec } from './keys.js';
import { ConsulSession } from './session.js';
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
      watch: (key, watchOptions) => this.watch(key, watchOptions),
      monitorAfterMs: this.#settings.monitorAfterMs ?? ttlMs,
      watchWaitMs: this.#settings.watchWaitMs,
      requestTimeoutMs: this.#settings.requestTimeoutMs,
      onError: this.#onError,
    });
  }

  /** The current holder of `key`: one `GET /v1/kv/<key>?consistent`. */
  protected async readHolder(key: string, signal: AbortSignal | undefined): Promise<LockHolder | null> {
    const { entry } = await this.#http.getKey(this.#codec.encode(key), { consistent: true, signal });
    return holderOf(entry, this.#codec, key);
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
      },
      key,
      signal,
    );
  }

  /** Held locks whose caller key starts with `prefix`: one `GET /v1/kv/<prefix>?recurse&consistent`. */
  protected async listHolders(prefix: string): Promise<LockHolder[]> {
    const { entries } = await this.#http.listKeys(this.#codec.encodePrefix(prefix), { consistent: true });
    const holders: LockHolder[] = [];
    for (const entry of entries) {
      const holder = holderOf(entry, this.#codec);
      if (holder?.key.startsWith(prefix)) holders.push(holder);
    }
    return holders;
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
      if (await this.#http.deleteKey(consulKey, { cas: entry.ModifyIndex })) return true;
    }
    throw new UnavailableError(`Consul: force-release '${key}' gave up: the key kept changing`, {
      backend: BACKEND,
    });
  }

  protected override closeConnections(): void {
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
