import { randomUUID } from 'node:crypto';
import {
  type Clock,
  ClosedError,
  checkDuration,
  type LockCapabilities,
  type LockHolder,
  type LockProvider,
  redact,
  type SessionOptions,
  systemClock,
  validateKey,
  type WatchOptions,
} from '@baton/core';
import pg from 'pg';
import { type PgLockConfig, pgLockDurationBounds } from './config.js';
import { BACKEND, type ErrorContext, pgLockError } from './errors.js';
import { type LockMigrationResult, lockSchemaCurrent, migrateLocks } from './migrate.js';
import { LockNotifications } from './notifications.js';
import { toHolder } from './rows.js';
import { PgLockSession } from './session.js';
import { type LockStatements, lockStatements } from './statements.js';
import { pgWatch } from './watch.js';

/**
 * Options of {@link PgLockProvider}: the validated config (`pgLockConfigSchema.parse({...})` fills in every
 * default), plus a clock and an observer of background errors.
 */
export type PgLockProviderOptions = PgLockConfig & {
  clock?: Clock | undefined;
  /**
   * Observes errors that no caller awaits: renewals retried, the LISTEN connection lost, idle pool
   * connections closed by the server, sweeps failed. Default: a process warning.
   */
  onError?: ((error: unknown, context: string) => void) | undefined;
};

/**
 * Locks in PostgreSQL: sessions and locks as rows in one schema, fences from a sequence, every expiry
 * judged by the database's clock. See `docs/backends/postgres-locks.md` for the failure model, round trips
 * and the grants it needs.
 */
export class PgLockProvider implements LockProvider {
  readonly backend = BACKEND;
  readonly capabilities: LockCapabilities = {
    nativeWatch: true,
    minTtlMs: pgLockDurationBounds.ttlMs.min,
    lockDelay: true,
    list: true,
    forceRelease: true,
    fairQueue: false,
  };
  readonly clock: Clock;
  /** The schema of the lock tables. */
  readonly schema: string;
  readonly #options: PgLockProviderOptions;
  readonly #pool: pg.Pool;
  readonly #sql: LockStatements;
  readonly #notifications: LockNotifications;
  readonly #errors: ErrorContext;
  readonly #sessions = new Set<PgLockSession>();
  readonly #closing = new AbortController();
  #ready: Promise<void> | undefined;
  #lastSweep = Number.NEGATIVE_INFINITY;
  #sweeping = false;
  #closed = false;

  constructor(options: PgLockProviderOptions) {
    this.#options = options;
    this.clock = options.clock ?? systemClock;
    this.schema = options.schema;
    checkDuration('ttlMs', options.ttlMs, pgLockDurationBounds.ttlMs);
    checkDuration('lockDelayMs', options.lockDelayMs, pgLockDurationBounds.lockDelayMs);
    checkDuration('pollIntervalMs', options.pollIntervalMs, pgLockDurationBounds.pollIntervalMs);
    this.#sql = lockStatements(options.schema);
    this.#errors = { urlSource: options.urlSource, schema: options.schema };
    const clientConfig: pg.ClientConfig = {
      application_name: 'baton-locks',
      connectionTimeoutMillis: options.connectTimeoutMs,
      keepAlive: true,
      ...(options.connectionString ? { connectionString: options.connectionString } : {}),
    };
    this.#pool = new pg.Pool({ ...clientConfig, max: options.poolSize, idleTimeoutMillis: 30_000 });
    // An idle connection the server closed (restart, pg_terminate_backend): the next query reconnects.
    this.#pool.on('error', (error) => this.#report(error, 'idle pool connection'));
    this.#notifications = new LockNotifications({
      clientConfig,
      channel: this.#sql.channel,
      report: (error, context) => this.#report(error, context),
    });
  }

  /**
   * Creates or upgrades the lock schema (idempotent; concurrent callers serialise). Runs on first use
   * unless `migrate` is off; call it once as a role allowed to create the schema when it is.
   */
  async migrate(): Promise<LockMigrationResult> {
    try {
      return await migrateLocks(this.#pool, this.schema);
    } catch (error) {
      throw pgLockError(error, 'migrate the lock schema', this.#errors);
    }
  }

  /**
   * Inserts the session row (expiring TTL from now by the database's clock) and starts renewing it every
   * TTL/2. Rejects with `UNAVAILABLE` when the database cannot be reached, `PERMISSION_DENIED` on a wrong
   * password or missing grant, `RESOURCE_NOT_FOUND` when the lock tables are missing and may not be created.
   */
  async openSession(options: SessionOptions = {}): Promise<PgLockSession> {
    this.#assertOpen();
    const ttlMs = checkDuration('ttlMs', options.ttlMs ?? this.#options.ttlMs, pgLockDurationBounds.ttlMs);
    const lockDelayMs = checkDuration(
      'lockDelayMs',
      options.lockDelayMs ?? this.#options.lockDelayMs,
      pgLockDurationBounds.lockDelayMs,
    );
    const id = randomUUID();
    const startedAt = this.clock.monotonicNow();
    await this.#query(
      this.#sql.openSession,
      [id, options.name ?? null, Math.ceil(ttlMs), Math.ceil(lockDelayMs)],
      'open a session',
    );
    const session = new PgLockSession({
      id,
      ttlMs,
      startedAt,
      clock: this.clock,
      sql: this.#sql,
      query: (text, values, what) => this.#query(text, values, what),
      watch: (key, watchOptions) => this.watch(key, watchOptions),
      renewed: () => this.#maybeSweep(ttlMs),
      report: (error, context) => this.#report(error, context),
    });
    this.#sessions.add(session);
    session.signal.addEventListener('abort', () => this.#sessions.delete(session), { once: true });
    if (this.#closed) await session.destroy();
    return session;
  }

  /** The current holder of `key` (a row naming a live session): one read. */
  async getHolder(key: string, _options: { signal?: AbortSignal } = {}): Promise<LockHolder | null> {
    validateKey(key);
    this.#assertOpen();
    const [row] = await this.#query(this.#sql.holder, [key], `read '${key}'`);
    return row ? toHolder(row) : null;
  }

  /** The holder of `key` now and after each change: LISTEN/NOTIFY, plus polling (see `pgWatch`). */
  watch(key: string, options: WatchOptions = {}): AsyncIterable<LockHolder | null> {
    validateKey(key);
    this.#assertOpen();
    const signal = options.signal
      ? AbortSignal.any([options.signal, this.#closing.signal])
      : this.#closing.signal;
    const pollIntervalMs = checkDuration(
      'pollIntervalMs',
      options.pollIntervalMs ?? this.#options.pollIntervalMs,
      pgLockDurationBounds.pollIntervalMs,
    );
    return pgWatch(
      {
        read: () => this.getHolder(key),
        notifications: this.#notifications,
        clock: this.clock,
        pollIntervalMs,
      },
      key,
      signal,
    );
  }

  /** Held locks whose key starts with `prefix`: one read, sorted by key. */
  async list(prefix = ''): Promise<LockHolder[]> {
    this.#assertOpen();
    const rows = await this.#query(this.#sql.list, [prefix], `list '${prefix}'`);
    return rows.map(toHolder).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /**
   * Operator escape hatch: deletes the key's row whoever holds it (one statement). The holder learns of it
   * at its next renewal or when its release resolves `false`; the next holder's fence is larger.
   */
  async forceRelease(key: string): Promise<boolean> {
    validateKey(key);
    this.#assertOpen();
    return (await this.#query(this.#sql.forceRelease, [key], `force-release '${key}'`)).length > 0;
  }

  /**
   * Removes sessions whose lock-delay is over, their rows, and rows released inside a lockAtLeastFor
   * window once it is over (a bounded batch). Runs by itself after renewals, at most once per TTL.
   */
  async sweep(): Promise<{ sessions: number; locks: number }> {
    const [row] = await this.#query(this.#sql.sweep, [], 'sweep expired locks');
    return { sessions: Number(row?.sessions ?? 0), locks: Number(row?.locks ?? 0) };
  }

  /** Destroys every open session (releasing their locks), then closes the connections. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#sessions].map((session) => session.destroy()));
    this.#closing.abort(new ClosedError('postgres lock provider closed'));
    this.#notifications.close();
    await this.#pool.end();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Keeps credentials out of logs and `util.inspect`. */
  toJSON(): Record<string, unknown> {
    return { backend: this.backend, schema: this.schema, capabilities: this.capabilities };
  }

  async #query(text: string, values: unknown[], what: string): Promise<Record<string, unknown>[]> {
    await this.#ensureReady();
    try {
      return (await this.#pool.query(text, values)).rows as Record<string, unknown>[];
    } catch (error) {
      throw pgLockError(error, what, this.#errors);
    }
  }

  #ensureReady(): Promise<void> {
    this.#ready ??= (async () => {
      try {
        if (this.#options.migrate && !(await lockSchemaCurrent(this.#pool, this.schema))) {
          await migrateLocks(this.#pool, this.schema);
        }
      } catch (error) {
        this.#ready = undefined;
        throw pgLockError(error, 'prepare the lock schema', this.#errors);
      }
    })();
    return this.#ready;
  }

  #maybeSweep(ttlMs: number): void {
    const now = this.clock.monotonicNow();
    if (this.#sweeping || this.#closed || now - this.#lastSweep < ttlMs) return;
    this.#sweeping = true;
    this.#lastSweep = now;
    this.sweep()
      .catch((error: unknown) => this.#report(error, 'sweep expired locks'))
      .finally(() => {
        this.#sweeping = false;
      });
  }

  #assertOpen(): void {
    if (this.#closed) throw new ClosedError('postgres lock provider is closed');
  }

  #report(error: unknown, context: string): void {
    const observer = this.#options.onError;
    try {
      if (observer) observer(error, context);
      else {
        const message = error instanceof Error ? error.message : String(error);
        process.emitWarning(`baton postgres locks: ${context}: ${redact(message)}`);
      }
    } catch {
      // An observer must never break the provider.
    }
  }
}
