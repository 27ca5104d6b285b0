import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { Redis } from 'ioredis';
import type { RedisEndpoint } from './config.js';
import { redisError } from './errors.js';

/** What {@link RedisClient} needs to connect. */
export interface RedisClientOptions {
  endpoint: RedisEndpoint;
  ca?: Buffer | undefined;
  requestTimeoutMs: number;
  prefix: string;
  onError?: ((error: unknown, context: string) => void) | undefined;
}

/** A script with its SHA1, as `EVALSHA` takes it. */
export interface Script {
  readonly lua: string;
  readonly sha: string;
}

/** Prepares a Lua script: its text and SHA1. */
export function script(lua: string): Script {
  return { lua, sha: createHash('sha1').update(lua).digest('hex') };
}

/**
 * One ioredis connection with baton's settings, and the only place that talks to it: every call maps the
 * client's errors to typed baton errors (see `redisError`), naming the last connection error when the
 * client gave up reconnecting.
 */
export class RedisClient {
  readonly #redis: Redis;
  readonly #prefix: string;
  #lastConnectionError: string | undefined;
  #closed = false;

  constructor(options: RedisClientOptions) {
    const { endpoint } = options;
    this.#prefix = options.prefix;
    this.#redis = new Redis({
      host: endpoint.host,
      port: endpoint.port,
      db: endpoint.db,
      ...(endpoint.username !== undefined ? { username: endpoint.username } : {}),
      ...(endpoint.password !== undefined ? { password: endpoint.password } : {}),
      ...(endpoint.tls
        ? {
            tls: {
              ...(isIP(endpoint.host) ? {} : { servername: endpoint.host }),
              ...(options.ca ? { ca: options.ca } : {}),
            },
          }
        : {}),
      lazyConnect: true,
      connectionName: 'baton',
      connectTimeout: options.requestTimeoutMs,
      commandTimeout: options.requestTimeoutMs,
      // A request fails (UNAVAILABLE) after one failed reconnection instead of queueing for long.
      maxRetriesPerRequest: 1,
      retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 5), 1_000),
      // Replies lost with a connection are failures, never replayed on the next connection.
      autoResendUnfulfilledCommands: false,
      // INFO, which the ready check sends, is not among the commands a least-privilege ACL user gets.
      enableReadyCheck: false,
      // After a failover the old primary answers READONLY: reconnect (to whatever the address now names).
      reconnectOnError: (error) => /^READONLY\b/.test(error.message),
    });
    this.#redis.on('error', (error: Error) => {
      this.#lastConnectionError = error.message;
      options.onError?.(error, 'redis connection');
    });
    this.#redis.on('ready', () => {
      this.#lastConnectionError = undefined;
    });
  }

  /** Runs `script` by `EVALSHA`, loading it with `EVAL` when the server does not know it (`NOSCRIPT`). */
  async run(
    what: string,
    s: Script,
    keys: readonly string[],
    args: readonly (string | number)[],
  ): Promise<unknown> {
    return this.call(what, async (redis) => {
      try {
        return await redis.evalsha(s.sha, keys.length, ...keys, ...args);
      } catch (error) {
        if (!(error instanceof Error) || !/^NOSCRIPT\b/.test(error.message)) throw error;
        return await redis.eval(s.lua, keys.length, ...keys, ...args);
      }
    });
  }

  /** Runs `fn` on the connection, mapping its failure to a typed error. */
  async call<T>(what: string, fn: (redis: Redis) => Promise<T>): Promise<T> {
    try {
      return await fn(this.#redis);
    } catch (error) {
      const last = this.#lastConnectionError;
      // A request that gave up while the client was still reconnecting failed to connect: say why.
      const connecting =
        error instanceof Error &&
        (error.name === 'MaxRetriesPerRequestError' ||
          (/^Command timed out/.test(error.message) && this.#redis.status !== 'ready'));
      const mapped =
        connecting && last ? Object.assign(new Error(`cannot connect: ${last}`), { cause: error }) : error;
      throw redisError(mapped, what, this.#prefix, this.#closed);
    }
  }

  /** Closes the connection at once. Idempotent. */
  close(): void {
    this.#closed = true;
    this.#redis.disconnect();
  }
}
