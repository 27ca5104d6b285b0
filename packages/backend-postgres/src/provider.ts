import { randomUUID } from 'node:crypto';
import {
  AbstractLockProvider,
  type Clock,
  checkDuration,
  type LockCapabilities,
  type LockHolder,
  parseSettings,
  redact,
  type SessionSettings,
  type SettingsOptions,
  sessionBoundsOf,
  systemClock,
  type WatchOptions,
} from '@baton/core';
import pg from 'pg';
import type { z } from 'zod';
import { pgLockDurationBounds, pgLockSettingsSchema, type UrlSource } from './config.js';
import { BACKEND, type ErrorContext, pgLockError } from './errors.js';
import { type LockMigrationResult, lockSchemaCurrent, migrateLocks } from './migrate.js';
import { LockNotifications } from './notifications.js';
import { toHolder } from './rows.js';
import { PgLockSession } from './session.js';
import { type LockStatements, lockStatements } from './statements.js';
import { pgWatch } from './watch.js';

/**
 * Options of {@link PgLockProvider}: the settings of `pgLockSettingsSchema` (schema, TTL, lock-delay, pool,
 * timeouts, migration; each with its default), where the database is, a clock and an observer of
 * background errors.
 */
export type PgLockProviderOptions = SettingsOptions<typeof pgLockSettingsSchema> & {
  /** The database; without one, `pg` reads the PG* variables. */
  connectionString?: string | undefined;
  /** Which variable named the database, for error messages. Default `BATON_LOCK_DATABASE_URL`. */
  urlSource?: UrlSource | undefined;
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
export class PgLockProvider extends AbstractLockProvider<PgLockSession> {
  readonly backend = BACKEND;
  readonly capabilities: LockCapabilities = {
    nativeWatch: true,
    minTtlMs: pgLockDurationBounds.ttlMs.min,
    lockDelay: true,
    list: true,
    forceRelease: true,
    fairQueue: false,
    holderTimes: true,
  };
  /** The schema of the lock tables. */
  readonly schema: string;
  readonly #settings: z.output<typeof pgLockSettingsSchema>;
  readonly #onError: PgLockProviderOptions['onError'];
  readonly #pool: pg.Pool;
  readonly #sql: LockStatements;
  readonly #notifications: LockNotifications;
  readonly #errors: ErrorContext;
  #ready: Promise<void> | undefined;
  #lastSweep = Number.NEGATIVE_INFINITY;
  #sweeping = false;

  constructor(options: PgLockProviderOptions) {
    const settings = parseSettings(pgLockSettingsSchema, options, 'postgres');
    super({
      label: 'postgres',
      clock: options.clock ?? systemClock,
      sessionDefaults: settings,
      sessionBounds: sessionBoundsOf(pgLockSettingsSchema),
    });
    this.#settings = settings;
    this.#onError = options.onError;
    this.schema = settings.schema;
    this.#sql = lockStatements(settings.schema);
    this.#errors = { urlSource: options.urlSource ?? 'BATON_LOCK_DATABASE_URL', schema: settings.schema };
    const clientConfig: pg.ClientConfig = {
      application_name: 'baton-locks',
      connectionTimeoutMillis: settings.connectTimeoutMs,
      keepAlive: true,
      ...(options.connectionString ? { connectionString: options.connectionString } : {}),
    };
    this.#pool = new pg.Pool({ ...clientConfig, max: settings.poolSize, idleTimeoutMillis: 30_000 });
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
  protected async startSession(settings: SessionSettings): Promise<PgLockSession> {
    const { ttlMs, lockDelayMs, name, startedAt } = settings;
    const id = randomUUID();
    await this.#query(
      this.#sql.openSession,
      [id, name ?? null, Math.ceil(ttlMs), Math.ceil(lockDelayMs)],
      'open a session',
    );
    return new PgLockSession({
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
  }

  /** The current holder of `key` (a row naming a live session): one read. */
  protected async readHolder(key: string): Promise<LockHolder | null> {
    const [row] = await this.#query(this.#sql.holder, [key], `read '${key}'`);
    return row ? toHolder(row) : null;
  }

  /** The holder of `key` now and after each change: LISTEN/NOTIFY, plus polling (see `pgWatch`). */
  protected watchKey(
    key: string,
    signal: AbortSignal,
    options: WatchOptions,
  ): AsyncIterable<LockHolder | null> {
    const pollIntervalMs = checkDuration(
      'pollIntervalMs',
      options.pollIntervalMs ?? this.#settings.pollIntervalMs,
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

  /** Held locks whose key starts with `prefix`: one read. */
  protected async listHolders(prefix: string): Promise<LockHolder[]> {
    return (await this.#query(this.#sql.list, [prefix], `list '${prefix}'`)).map(toHolder);
  }

  /**
   * Operator escape hatch: deletes the key's row whoever holds it (one statement). The holder learns of it
   * at its next renewal or when its release resolves `false`; the next holder's fence is larger.
   */
  protected async forceReleaseKey(key: string): Promise<boolean> {
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

  protected override async closeConnections(): Promise<void> {
    this.#notifications.close();
    await this.#pool.end();
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
        if (this.#settings.migrate && !(await lockSchemaCurrent(this.#pool, this.schema))) {
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
    if (this.#sweeping || this.closed || now - this.#lastSweep < ttlMs) return;
    this.#sweeping = true;
    this.#lastSweep = now;
    this.sweep()
      .catch((error: unknown) => this.#report(error, 'sweep expired locks'))
      .finally(() => {
        this.#sweeping = false;
      });
  }

  #report(error: unknown, context: string): void {
    const observer = this.#onError;
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
