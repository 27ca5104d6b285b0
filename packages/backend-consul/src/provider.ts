import {
  type BatonError,
  type Clock,
  ClosedError,
  ConfigError,
  checkDuration,
  InvalidArgumentError,
  type LockCapabilities,
  type LockHolder,
  type LockProvider,
  quoteForMessage,
  type SessionOptions,
  systemClock,
  UnavailableError,
  validateKey,
  type WatchOptions,
} from '@baton/core';
import { CONSUL_MIN_TTL_MS, consulDurationBounds } from './config.js';
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

/** Options of {@link ConsulLockProvider}. Every field has a default. */
export interface ConsulLockProviderOptions {
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
  /** Datacenter to use instead of the agent's own. */
  datacenter?: string;
  /** Consul key prefix of every lock. Default `baton/`. */
  prefix?: string;
  /** Default session TTL. Default 15 s, from `minTtlMs` to 24 h (Consul's bounds). */
  ttlMs?: number;
  /** Smallest TTL accepted. Default 10 s (Consul's floor); lower it only for test servers. */
  minTtlMs?: number;
  /** Default lock-delay after a session is invalidated while holding locks. Default 15 s, at most 60 s. */
  lockDelayMs?: number;
  /**
   * What Consul does with held keys when a session is invalidated. Default `delete`: an expired holder's
   * key goes (lock-delay still applies to it), as a released one does, so no key is left behind.
   */
  behavior?: 'release' | 'delete';
  /**
   * Health checks the sessions are bound to. Default `[]`: none, so a lock lives exactly as long as its
   * session keeps renewing. `['serfHealth']` also ends sessions when the agent's node fails.
   */
  checks?: readonly string[];
  /** Session name shown in Consul when `openSession` gets none. Default `baton`. */
  sessionName?: string;
  /** Deadline of each non-blocking request. Default 10 s, from 100 ms to 10 min. */
  requestTimeoutMs?: number;
  /**
   * A lease held this long gets a blocking-query monitor on its key, so a force-release or deletion is
   * noticed at once. Default: the session's TTL, at most 24 h. Short tasks never pay for it.
   */
  monitorAfterMs?: number;
  /** `?wait` of blocking queries (watch, monitor). Default 60 s, from 100 ms to 10 min. */
  watchWaitMs?: number;
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
export class ConsulLockProvider implements LockProvider {
  readonly backend = BACKEND;
  readonly capabilities: LockCapabilities;
  readonly clock: Clock;
  /** The Consul key prefix of every lock. */
  readonly prefix: string;
  readonly #http: ConsulHttp;
  readonly #codec: KeyCodec;
  readonly #options: Required<
    Pick<
      ConsulLockProviderOptions,
      | 'ttlMs'
      | 'minTtlMs'
      | 'lockDelayMs'
      | 'behavior'
      | 'checks'
      | 'sessionName'
      | 'requestTimeoutMs'
      | 'watchWaitMs'
    >
  > &
    Pick<ConsulLockProviderOptions, 'monitorAfterMs' | 'onError'>;
  readonly #sessions = new Set<ConsulSession>();
  /** Aborts when the provider closes: ends every running watch. */
  readonly #closing = new AbortController();
  #closed = false;

  constructor(options: ConsulLockProviderOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.#codec = new KeyCodec(options.prefix ?? 'baton/');
    this.prefix = this.#codec.prefix;
    this.#options = {
      ttlMs: options.ttlMs ?? 15_000,
      minTtlMs: options.minTtlMs ?? CONSUL_MIN_TTL_MS,
      lockDelayMs: options.lockDelayMs ?? 15_000,
      behavior: options.behavior ?? 'delete',
      checks: [...(options.checks ?? [])],
      sessionName: options.sessionName ?? 'baton',
      requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
      watchWaitMs: options.watchWaitMs ?? 60_000,
      monitorAfterMs: options.monitorAfterMs,
      onError: options.onError,
    };
    checkTtl(this.#options.ttlMs, this.#options.minTtlMs);
    checkLockDelay(this.#options.lockDelayMs);
    for (const name of ['requestTimeoutMs', 'watchWaitMs', 'monitorAfterMs'] as const) {
      const value = this.#options[name];
      if (value !== undefined) checkDuration(name, value, consulDurationBounds[name]);
    }
    if (this.#options.behavior !== 'release' && this.#options.behavior !== 'delete') {
      throw new InvalidArgumentError(
        `behavior must be 'release' or 'delete', got '${String(options.behavior)}'`,
      );
    }
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
      minTtlMs: this.#options.minTtlMs,
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
      datacenter: options.datacenter,
      requestTimeoutMs: this.#options.requestTimeoutMs,
      prefix: this.prefix,
    });
  }

  /**
   * Creates a Consul session (`TTL`, `LockDelay`, `Behavior`, `Checks`, `Name`) and starts renewing it
   * every TTL/2. Rejects with `UNAVAILABLE` when the agent cannot be reached, `PERMISSION_DENIED` when the
   * token may not create sessions, `CONFIG_INVALID` when a configured check does not exist.
   */
  async openSession(options: SessionOptions = {}): Promise<ConsulSession> {
    if (this.#closed) throw new ClosedError('Consul lock provider is closed');
    const ttlMs = options.ttlMs ?? this.#options.ttlMs;
    const lockDelayMs = options.lockDelayMs ?? this.#options.lockDelayMs;
    checkTtl(ttlMs, this.#options.minTtlMs);
    checkLockDelay(lockDelayMs);
    const startedAt = this.clock.monotonicNow();
    let id: string;
    try {
      id = await this.#http.createSession({
        name: options.name ?? this.#options.sessionName,
        ttlMs,
        lockDelayMs,
        behavior: this.#options.behavior,
        checks: this.#options.checks,
      });
    } catch (error) {
      throw sessionCreateError(error as BatonError, this.#options.checks);
    }
    const session = new ConsulSession({
      id,
      ttlMs,
      lockDelayMs,
      startedAt,
      http: this.#http,
      codec: this.#codec,
      clock: this.clock,
      watch: (key, watchOptions) => this.watch(key, watchOptions),
      monitorAfterMs: this.#options.monitorAfterMs ?? ttlMs,
      watchWaitMs: this.#options.watchWaitMs,
      requestTimeoutMs: this.#options.requestTimeoutMs,
      onError: this.#options.onError,
    });
    this.#sessions.add(session);
    session.signal.addEventListener('abort', () => this.#sessions.delete(session), { once: true });
    if (this.#closed) await session.destroy();
    return session;
  }

  /** The current holder of `key`: one `GET /v1/kv/<key>?consistent`. */
  async getHolder(key: string, options: { signal?: AbortSignal } = {}): Promise<LockHolder | null> {
    validateKey(key);
    this.#assertOpen();
    const { entry } = await this.#http.getKey(this.#codec.encode(key), {
      consistent: true,
      signal: options.signal,
    });
    return holderOf(entry, this.#codec, key);
  }

  /**
   * The holder of `key` now and after each change, through blocking queries (see `consulWatch`). Ends when
   * `signal` aborts or the provider closes.
   */
  watch(key: string, options: WatchOptions = {}): AsyncIterable<LockHolder | null> {
    validateKey(key);
    this.#assertOpen();
    const signal = options.signal
      ? AbortSignal.any([options.signal, this.#closing.signal])
      : this.#closing.signal;
    return consulWatch(
      {
        http: this.#http,
        codec: this.#codec,
        clock: this.clock,
        waitMs: this.#options.watchWaitMs,
        retryBaseMs: Math.max(10, Math.min(1_000, (options.pollIntervalMs ?? 500) / 2)),
      },
      key,
      signal,
    );
  }

  /** Held locks whose caller key starts with `prefix`: one `GET /v1/kv/<prefix>?recurse&consistent`. */
  async list(prefix = ''): Promise<LockHolder[]> {
    this.#assertOpen();
    const consulPrefix = this.#codec.encodePrefix(prefix);
    const { entries } = await this.#http.listKeys(consulPrefix, { consistent: true });
    const holders: LockHolder[] = [];
    for (const entry of entries) {
      const holder = holderOf(entry, this.#codec);
      if (holder?.key.startsWith(prefix)) holders.push(holder);
    }
    return holders.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /**
   * Operator escape hatch: deletes the key if a session holds it (`DELETE ?cas=<ModifyIndex>`, so a
   * concurrent change is never clobbered). The published value goes with it and no lock-delay applies.
   * The holder learns of it from its key monitor (leases held longer than `monitorAfterMs`) or when its
   * release returns `false`; until then it may still believe it holds the lock, and its fence stays valid
   * for fenced writes until a new holder writes with a larger one.
   */
  async forceRelease(key: string): Promise<boolean> {
    validateKey(key);
    this.#assertOpen();
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

  /** Destroys every open session (releasing their leases cleanly), then closes connections. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#sessions].map((session) => session.destroy()));
    this.#closing.abort(new ClosedError('Consul lock provider closed'));
    this.#http.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #assertOpen(): void {
    if (this.#closed) throw new ClosedError('Consul lock provider is closed');
  }

  /** Keeps the token out of logs and `util.inspect`. */
  toJSON(): Record<string, unknown> {
    return { backend: this.backend, prefix: this.prefix, capabilities: this.capabilities };
  }
}

function checkTtl(ttlMs: number, minTtlMs: number): void {
  const { max } = consulDurationBounds.ttlMs;
  checkDuration('ttlMs', ttlMs, { min: Math.min(minTtlMs, max), max });
}

function checkLockDelay(lockDelayMs: number): void {
  checkDuration('lockDelayMs', lockDelayMs, consulDurationBounds.lockDelayMs);
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
