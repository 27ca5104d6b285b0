import { randomBytes } from 'node:crypto';
import {
  type Clock,
  ClosedError,
  checkDuration,
  type LockCapabilities,
  type LockHolder,
  type LockProvider,
  ProtocolError,
  pollingWatch,
  type SessionOptions,
  systemClock,
  validateKey,
  type WatchOptions,
} from '@baton/core';
import { RedisClient } from './client.js';
import { type RedisConfig, redisDurationBounds } from './config.js';
import { BACKEND } from './errors.js';
import { RedisKeys } from './keys.js';
import { SCRIPTS } from './scripts.js';
import { RedisSession } from './session.js';

/**
 * Options of {@link RedisLockProvider}: the validated config (`redisConfigSchema.parse({...})` fills in every
 * default) with the CA bundle instead of its path.
 */
export type RedisLockProviderOptions = Omit<RedisConfig, 'caFile'> & {
  /** PEM CA bundle for a `rediss://` server whose certificate Node's trusted roots do not cover. */
  ca?: Buffer | undefined;
  clock?: Clock | undefined;
  /** Observes errors handled in the background (renewals, connection errors). */
  onError?: ((error: unknown, context: string) => void) | undefined;
};

/**
 * The Redis lock provider: one key per lock and one per live session under a prefix, every change a Lua
 * script that compares the acquisition's token, expiry by the server's own TTL, fences from a counter that
 * never goes back. See `docs/backends/redis.md` for guarantees, failure model, round trips and the ACL it
 * needs.
 */
export class RedisLockProvider implements LockProvider {
  readonly backend = BACKEND;
  readonly capabilities: LockCapabilities = {
    nativeWatch: false,
    minTtlMs: redisDurationBounds.ttlMs.min,
    lockDelay: true,
    list: true,
    forceRelease: true,
    fairQueue: false,
  };
  readonly clock: Clock;
  /** The Redis key prefix of every key baton writes. */
  readonly prefix: string;
  readonly #options: RedisLockProviderOptions;
  readonly #client: RedisClient;
  readonly #keys: RedisKeys;
  readonly #sessions = new Set<RedisSession>();
  readonly #closing = new AbortController();
  #closed = false;

  constructor(options: RedisLockProviderOptions) {
    this.#options = options;
    this.clock = options.clock ?? systemClock;
    this.prefix = options.prefix;
    this.#keys = new RedisKeys(options.prefix);
    checkDuration('ttlMs', options.ttlMs, redisDurationBounds.ttlMs);
    checkDuration('lockDelayMs', options.lockDelayMs, redisDurationBounds.lockDelayMs);
    checkDuration('requestTimeoutMs', options.requestTimeoutMs, redisDurationBounds.requestTimeoutMs);
    this.#client = new RedisClient({
      endpoint: options.endpoint,
      ca: options.ca,
      requestTimeoutMs: options.requestTimeoutMs,
      prefix: options.prefix,
      onError: options.onError,
    });
  }

  /**
   * Writes the session key (TTL `ttlMs`) and starts renewing it, with the session's locks, every TTL/2.
   * Rejects with `UNAVAILABLE` when Redis cannot be reached, `PERMISSION_DENIED` when authentication fails.
   */
  async openSession(options: SessionOptions = {}): Promise<RedisSession> {
    this.#assertOpen();
    const ttlMs = checkDuration('ttlMs', options.ttlMs ?? this.#options.ttlMs, redisDurationBounds.ttlMs);
    const lockDelayMs = checkDuration(
      'lockDelayMs',
      options.lockDelayMs ?? this.#options.lockDelayMs,
      redisDurationBounds.lockDelayMs,
    );
    const id = randomBytes(12).toString('hex');
    const startedAt = this.clock.monotonicNow();
    const created = await this.#client.call('open session', (redis) =>
      redis.set(this.#keys.session(id), options.name ?? '', 'PX', Math.ceil(ttlMs), 'NX'),
    );
    if (created !== 'OK') {
      throw new ProtocolError(`redis: open session: the new session key ${id} already existed`, {
        backend: BACKEND,
      });
    }
    const session = new RedisSession({
      id,
      ttlMs,
      lockDelayMs,
      startedAt,
      client: this.#client,
      keys: this.#keys,
      clock: this.clock,
      watch: (key, watchOptions) => this.watch(key, watchOptions),
      onError: this.#options.onError,
    });
    this.#sessions.add(session);
    session.signal.addEventListener('abort', () => this.#sessions.delete(session), { once: true });
    if (this.#closed) await session.destroy();
    return session;
  }

  /** The current holder of `key`: one script reading the lock hash against the server's clock. */
  async getHolder(key: string, _options: { signal?: AbortSignal } = {}): Promise<LockHolder | null> {
    validateKey(key);
    this.#assertOpen();
    return (await this.#holders(`read '${key}'`, [key]))[0] ?? null;
  }

  /** The holder of `key` now and after each change, by polling (see core's `pollingWatch`). */
  watch(key: string, options: WatchOptions = {}): AsyncIterable<LockHolder | null> {
    validateKey(key);
    this.#assertOpen();
    const signal = options.signal
      ? AbortSignal.any([options.signal, this.#closing.signal])
      : this.#closing.signal;
    return pollingWatch(() => this.getHolder(key), {
      signal,
      pollIntervalMs: options.pollIntervalMs ?? 250,
      clock: this.clock,
    });
  }

  /** Held locks whose caller key starts with `prefix`: a `SCAN` of the lock keys, then one script per 500. */
  async list(prefix = ''): Promise<LockHolder[]> {
    this.#assertOpen();
    const found = new Set<string>();
    let cursor = '0';
    do {
      const [next, batch] = await this.#client.call(`list '${prefix}'`, (redis) =>
        redis.scan(cursor, 'MATCH', this.#keys.lockPattern(prefix), 'COUNT', 1_000),
      );
      cursor = next;
      for (const lockKey of batch) {
        const key = this.#keys.callerKey(lockKey);
        if (key !== undefined) found.add(key);
      }
    } while (cursor !== '0');
    const keys = [...found];
    const holders: LockHolder[] = [];
    for (let i = 0; i < keys.length; i += 500) {
      holders.push(...(await this.#holders(`list '${prefix}'`, keys.slice(i, i + 500))));
    }
    return holders.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /**
   * Operator escape hatch: deletes the lock key whoever holds it (one script). The holder learns of it at
   * its next renewal; its fence stays valid for fenced writes until a new holder writes with a larger one.
   */
  async forceRelease(key: string): Promise<boolean> {
    validateKey(key);
    this.#assertOpen();
    const reply = await this.#client.run(
      `force-release '${key}'`,
      SCRIPTS.forceRelease,
      [this.#keys.lock(key)],
      [],
    );
    return reply === 1;
  }

  /** Destroys every open session (releasing their locks), then closes the connection. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#sessions].map((session) => session.destroy()));
    this.#closing.abort(new ClosedError('redis lock provider closed'));
    this.#client.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #holders(what: string, keys: readonly string[]): Promise<LockHolder[]> {
    const reply = await this.#client.run(
      what,
      SCRIPTS.holders,
      keys.map((k) => this.#keys.lock(k)),
      [],
    );
    if (!Array.isArray(reply))
      throw new ProtocolError(`redis: ${what}: unexpected reply`, { backend: BACKEND });
    return reply.map((row: unknown) => {
      const [position, owner, fence, value] = row as [number, string, string, string | null];
      const key = keys[position - 1];
      if (key === undefined)
        throw new ProtocolError(`redis: ${what}: unexpected reply`, { backend: BACKEND });
      return { key, sessionId: owner, fence: Number(fence), value: value ?? undefined };
    });
  }

  #assertOpen(): void {
    if (this.#closed) throw new ClosedError('redis lock provider is closed');
  }

  /** Keeps credentials out of logs and `util.inspect`. */
  toJSON(): Record<string, unknown> {
    return { backend: this.backend, prefix: this.prefix, capabilities: this.capabilities };
  }
}
