import { randomBytes } from 'node:crypto';
import {
  AbstractLockProvider,
  type Clock,
  type LockCapabilities,
  type LockHolder,
  ProtocolError,
  parseSettings,
  pollingWatch,
  type SessionSettings,
  type SettingsOptions,
  sessionBoundsOf,
  systemClock,
  type WatchOptions,
} from '@baton/core';
import { RedisClient } from './client.js';
import { type RedisEndpoint, redisDurationBounds, redisSettingsSchema } from './config.js';
import { BACKEND } from './errors.js';
import { RedisKeys } from './keys.js';
import { SCRIPTS } from './scripts.js';
import { RedisSession } from './session.js';

/**
 * Options of {@link RedisLockProvider}: the settings of `redisSettingsSchema` (prefix, TTL, lock-delay,
 * request timeout; each with its default), where the server is, and the CA bundle instead of its path.
 */
export type RedisLockProviderOptions = SettingsOptions<typeof redisSettingsSchema> & {
  /** Where to connect (the config's `url` with its user and password). */
  endpoint: RedisEndpoint;
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
export class RedisLockProvider extends AbstractLockProvider<RedisSession> {
  readonly backend = BACKEND;
  readonly capabilities: LockCapabilities = {
    nativeWatch: false,
    minTtlMs: redisDurationBounds.ttlMs.min,
    lockDelay: true,
    list: true,
    forceRelease: true,
    fairQueue: false,
    holderTimes: true,
  };
  /** The Redis key prefix of every key baton writes. */
  readonly prefix: string;
  readonly #onError: RedisLockProviderOptions['onError'];
  readonly #client: RedisClient;
  readonly #keys: RedisKeys;

  constructor(options: RedisLockProviderOptions) {
    const settings = parseSettings(redisSettingsSchema, options, 'redis');
    super({
      label: 'redis',
      clock: options.clock ?? systemClock,
      sessionDefaults: settings,
      sessionBounds: sessionBoundsOf(redisSettingsSchema),
    });
    this.prefix = settings.prefix;
    this.#onError = options.onError;
    this.#keys = new RedisKeys(settings.prefix);
    this.#client = new RedisClient({
      endpoint: options.endpoint,
      ca: options.ca,
      requestTimeoutMs: settings.requestTimeoutMs,
      prefix: settings.prefix,
      onError: options.onError,
    });
  }

  /**
   * Writes the session key (TTL `ttlMs`) and starts renewing it, with the session's locks, every TTL/2.
   * Rejects with `UNAVAILABLE` when Redis cannot be reached, `PERMISSION_DENIED` when authentication fails.
   */
  protected async startSession(settings: SessionSettings): Promise<RedisSession> {
    const { ttlMs, lockDelayMs, name, startedAt } = settings;
    const id = randomBytes(12).toString('hex');
    const created = await this.#client.call('open session', (redis) =>
      redis.set(this.#keys.session(id), name ?? '', 'PX', Math.ceil(ttlMs), 'NX'),
    );
    if (created !== 'OK') {
      throw new ProtocolError(`redis: open session: the new session key ${id} already existed`, {
        backend: BACKEND,
      });
    }
    return new RedisSession({
      id,
      ttlMs,
      lockDelayMs,
      startedAt,
      client: this.#client,
      keys: this.#keys,
      clock: this.clock,
      watch: (key, watchOptions) => this.watch(key, watchOptions),
      onError: this.#onError,
    });
  }

  /** The current holder of `key`: one script reading the lock hash against the server's clock. */
  protected async readHolder(key: string): Promise<LockHolder | null> {
    return (await this.#holders(`read '${key}'`, [key]))[0] ?? null;
  }

  /** The holder of `key` now and after each change, by polling (see core's `pollingWatch`). */
  protected watchKey(
    key: string,
    signal: AbortSignal,
    options: WatchOptions,
  ): AsyncIterable<LockHolder | null> {
    return pollingWatch(() => this.getHolder(key), {
      signal,
      pollIntervalMs: options.pollIntervalMs ?? 250,
      clock: this.clock,
    });
  }

  /** Held locks whose caller key starts with `prefix`: a `SCAN` of the lock keys, then one script per 500. */
  protected async listHolders(prefix: string): Promise<LockHolder[]> {
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
    return holders;
  }

  /**
   * Operator escape hatch: deletes the lock key whoever holds it (one script). The holder learns of it at
   * its next renewal; its fence stays valid for fenced writes until a new holder writes with a larger one.
   */
  protected async forceReleaseKey(key: string): Promise<boolean> {
    const reply = await this.#client.run(
      `force-release '${key}'`,
      SCRIPTS.forceRelease,
      [this.#keys.lock(key)],
      [],
    );
    return reply === 1;
  }

  protected override closeConnections(): void {
    this.#client.close();
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
      const [position, owner, fence, value, at, remaining] = row as [
        number,
        string,
        string,
        string | null,
        string | null,
        string,
      ];
      const key = keys[position - 1];
      if (key === undefined)
        throw new ProtocolError(`redis: ${what}: unexpected reply`, { backend: BACKEND });
      return {
        key,
        sessionId: owner,
        fence: Number(fence),
        value: value ?? undefined,
        ...(at ? { acquiredAt: Number(at), acquiredAtSource: 'server' as const } : {}),
        leaseRemainingMs: Number(remaining),
      };
    });
  }

  /** Keeps credentials out of logs and `util.inspect`. */
  toJSON(): Record<string, unknown> {
    return { backend: this.backend, prefix: this.prefix, capabilities: this.capabilities };
  }
}
