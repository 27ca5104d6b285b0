// A complete, small lock backend on plain PostgreSQL rows: sessions and locks are rows, fences come from one
// sequence, and every expiry decision is made by the database's clock alone (one clock, so no two machines'
// clocks are ever compared). Registered under the name `pg-rows`.
import { randomUUID } from 'node:crypto';
import {
  AbstractLockProvider,
  AbstractLockSession,
  BatonError,
  defineBackend,
  durationMs,
  intField,
  KeepAlive,
  LeaseLostError,
  PermissionDeniedError,
  ProtocolError,
  parseSettings,
  pickEnv,
  pollingWatch,
  ResourceNotFoundError,
  SessionLostError,
  sessionBoundsOf,
  systemClock,
  UnavailableError,
} from '@baton/core';
import pg from 'pg';
import { z } from 'zod';

const NAME = 'pg-rows';

/** @typedef {import('@baton/core').LockProvider} LockProvider */
/** @typedef {import('@baton/core').LockHolder} LockHolder */
/** @typedef {import('@baton/core').Clock} Clock */
/**
 * Anything with pg's `query` and `end` (a `pg.Pool`, or a wrapper around one).
 * @typedef {{ query(text: string, values?: unknown[]): Promise<{ rows: any[], rowCount: number | null }>, end(): Promise<void> }} Queryable
 */

/** Every setting, its default and bounds, once: the config and the provider's options both use it. */
export const pgRowsConfigSchema = z
  .object({
    /** Connection string; without one, `pg` reads PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE. */
    connectionString: z.string().min(1).optional(),
    /** Schema holding the `sessions` and `locks` tables and the fence sequence. */
    schema: z
      .string()
      .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'expected a lowercase SQL identifier')
      .default('baton_locks'),
    ttlMs: durationMs({ min: 100 }).default(15_000),
    lockDelayMs: durationMs().default(15_000),
    poolSize: intField({ min: 1, max: 100 }).default(4),
    /** Create the schema, tables and sequence on first use. */
    migrate: z
      .union([z.boolean(), z.enum(['true', 'false'])])
      .transform((v) => v === true || v === 'true')
      .default(true),
  })
  .strict();

/** The backend definition: `registerBackend(backend)` or `BATON_BACKEND_MODULE=<this module>`. */
export const backend = defineBackend({
  name: NAME,
  description:
    'locks as PostgreSQL rows (sequence fences, database-clock expiry): one database, any number of hosts',
  schema: pgRowsConfigSchema,
  fields: {
    // `secret: 'url'`: errors show this URL with its password masked (see redact() in @baton/core).
    connectionString: { env: 'DATABASE_URL', hint: 'a postgres:// URL', secret: 'url' },
    schema: { env: 'BATON_PG_LOCK_SCHEMA', hint: 'a lowercase SQL identifier such as baton_locks' },
    ttlMs: { env: 'BATON_SESSION_TTL', hint: 'a duration such as 15s (at least 100ms)' },
    lockDelayMs: { env: 'BATON_LOCK_DELAY', hint: 'a duration such as 15s, or 0 to disable' },
    poolSize: { env: 'BATON_PG_LOCK_POOL', hint: 'a whole number between 1 and 100' },
  },
  fromEnv: (env) =>
    pickEnv(env, {
      DATABASE_URL: 'connectionString',
      BATON_PG_LOCK_SCHEMA: 'schema',
      BATON_SESSION_TTL: 'ttlMs',
      BATON_LOCK_DELAY: 'lockDelayMs',
      BATON_PG_LOCK_POOL: 'poolSize',
    }),
  create: (config, context) => new PgRowsLockProvider({ ...config, clock: context.clock }),
});

const capabilities = Object.freeze({
  nativeWatch: false,
  minTtlMs: 100,
  lockDelay: true,
  list: true,
  forceRelease: true,
  fairQueue: false,
});

/**
 * Maps a `pg` error onto baton's error hierarchy (the original stays as `cause`): SQLSTATE classes 28 and
 * 42501 are permissions, a missing table is a missing resource, other SQL errors break the protocol, and
 * everything else (connection refused or reset, timeouts, class 08/53/57/40) is transient.
 */
export function toBatonError(error, what) {
  if (error instanceof BatonError) return error;
  const code = typeof error?.code === 'string' ? error.code : '';
  const message = `${what} failed: ${error?.message ?? String(error)}`;
  const options = { cause: error, backend: NAME };
  if (/^28/.test(code) || code === '42501') return new PermissionDeniedError(message, options);
  if (code === '42P01' || code === '3F000') {
    return new ResourceNotFoundError(
      `${message}. Fix: let the backend create its tables (migrate: true)`,
      options,
    );
  }
  if (/^[0-9A-Z]{5}$/.test(code) && !/^(08|53|57|40)/.test(code)) return new ProtocolError(message, options);
  return new UnavailableError(message, options);
}

/**
 * Locks as PostgreSQL rows.
 *
 * - A session is a row whose `expires_at` the holder pushes forward every TTL/2 (`KeepAlive`); the holder
 *   stops trusting it TTL after the *start* of its last good renewal, and the database frees its locks only
 *   after `expires_at`, which it set no earlier than that start.
 * - A lock row points at its holding session. Taking it is one `INSERT … ON CONFLICT DO UPDATE … WHERE`
 *   that succeeds only if the holder released it, or its session expired and the lock-delay passed, and the
 *   `lockAtLeastFor` window is over.
 * - The fence is `nextval()` of one sequence: strictly increasing across every key, release, expiry and
 *   deletion of the row.
 *
 * `AbstractLockProvider` does the rest: the set of open sessions, `close()`, key validation, the closed
 * check, process holds, `openSession`'s bounds, and the order of `list`.
 */
export class PgRowsLockProvider extends AbstractLockProvider {
  backend = NAME;
  capabilities = capabilities;

  /** @type {Queryable} */ #pool;
  #ownsPool;
  #schema;
  /** @type {Promise<void> | undefined} */ #ready;
  #migrate;

  /**
   * @param {Partial<import('zod').output<typeof pgRowsConfigSchema>> & { clock?: Clock, pool?: Queryable }} options
   */
  constructor(options = {}) {
    const settings = parseSettings(pgRowsConfigSchema, options, NAME);
    super({
      label: NAME,
      clock: options.clock ?? systemClock,
      sessionDefaults: settings,
      sessionBounds: sessionBoundsOf(pgRowsConfigSchema),
    });
    this.#schema = settings.schema;
    this.#migrate = settings.migrate;
    if (options.pool) {
      this.#pool = options.pool;
      this.#ownsPool = false;
    } else {
      const pool = new pg.Pool({
        ...(settings.connectionString ? { connectionString: settings.connectionString } : {}),
        max: settings.poolSize,
        connectionTimeoutMillis: 5_000,
      });
      pool.on('error', () => {}); // an idle client dropped by the server; the next query reconnects
      this.#pool = pool;
      this.#ownsPool = true;
    }
  }

  /** Qualified name of an object in this backend's schema. */
  t(name) {
    return `"${this.#schema}".${name}`;
  }

  /** Runs one statement, mapping errors. @internal */
  async query(text, values, what) {
    await this.#ensureReady();
    try {
      return await this.#pool.query(text, values);
    } catch (error) {
      throw toBatonError(error, what);
    }
  }

  #ensureReady() {
    if (!this.#migrate) return Promise.resolve();
    this.#ready ??= this.#createTables().catch((error) => {
      this.#ready = undefined;
      throw toBatonError(error, `${NAME}: creating tables`);
    });
    return this.#ready;
  }

  async #createTables() {
    // One simple-protocol query runs as one implicit transaction; the advisory lock keeps concurrent first
    // starts from racing on the DDL.
    await this.#pool.query(`
      SELECT pg_advisory_xact_lock(hashtext('baton:${this.#schema}'));
      CREATE SCHEMA IF NOT EXISTS "${this.#schema}";
      CREATE SEQUENCE IF NOT EXISTS ${this.t('fence_seq')};
      CREATE TABLE IF NOT EXISTS ${this.t('sessions')} (
        id uuid PRIMARY KEY,
        name text,
        ttl_ms integer NOT NULL,
        lock_delay_ms integer NOT NULL,
        expires_at timestamptz NOT NULL
      );
      CREATE TABLE IF NOT EXISTS ${this.t('locks')} (
        key text PRIMARY KEY,
        session_id uuid,
        fence bigint NOT NULL,
        value text,
        min_until timestamptz NOT NULL
      );
      CREATE INDEX IF NOT EXISTS locks_session_idx ON ${this.t('locks')} (session_id);`);
  }

  /** @param {import('@baton/core').SessionSettings} settings */
  async startSession({ ttlMs, lockDelayMs, name, startedAt }) {
    const id = randomUUID();
    // Forget sessions that expired long ago (their lock-delay is over), then create ours.
    await this.query(
      `WITH gone AS (
         DELETE FROM ${this.t('sessions')}
         WHERE expires_at + (lock_delay_ms + 60000) * interval '1 millisecond' < clock_timestamp()
       )
       INSERT INTO ${this.t('sessions')} (id, name, ttl_ms, lock_delay_ms, expires_at)
       VALUES ($1::uuid, $2::text, $3::int, $4::int, clock_timestamp() + $3::int * interval '1 millisecond')`,
      [id, name ?? null, Math.ceil(ttlMs), Math.ceil(lockDelayMs)],
      `${NAME}: opening a session`,
    );
    return new PgRowsSession(this, id, ttlMs, startedAt);
  }

  /** @returns {Promise<LockHolder | null>} */
  async readHolder(key) {
    const { rows } = await this.query(
      `SELECT l.key, l.session_id, l.fence, l.value FROM ${this.t('locks')} l
       JOIN ${this.t('sessions')} s ON s.id = l.session_id
       WHERE l.key = $1 AND s.expires_at > clock_timestamp()`,
      [key],
      `${NAME}: reading the holder of '${key}'`,
    );
    return rows[0] ? toHolder(rows[0]) : null;
  }

  watchKey(key, signal, options) {
    return pollingWatch(() => this.getHolder(key), {
      signal,
      pollIntervalMs: options.pollIntervalMs ?? 500,
      clock: this.clock,
    });
  }

  async listHolders(prefix) {
    const { rows } = await this.query(
      `SELECT l.key, l.session_id, l.fence, l.value FROM ${this.t('locks')} l
       JOIN ${this.t('sessions')} s ON s.id = l.session_id
       WHERE starts_with(l.key, $1) AND s.expires_at > clock_timestamp()`,
      [prefix],
      `${NAME}: listing locks`,
    );
    return rows.map(toHolder);
  }

  /** Clears the holder (and any lock-delay or lockAtLeastFor window). The holder notices at its next renewal. */
  async forceReleaseKey(key) {
    const { rowCount } = await this.query(
      `UPDATE ${this.t('locks')} SET session_id = NULL, value = NULL, min_until = clock_timestamp()
       WHERE key = $1 AND session_id IS NOT NULL`,
      [key],
      `${NAME}: force-releasing '${key}'`,
    );
    return (rowCount ?? 0) > 0;
  }

  async closeConnections() {
    if (this.#ownsPool) await this.#pool.end().catch(() => {});
  }
}

/** A session of {@link PgRowsLockProvider}. */
export class PgRowsSession extends AbstractLockSession {
  #provider;
  #keepAlive;

  constructor(provider, id, ttlMs, startedAt) {
    super({
      id,
      ttlMs,
      clock: provider.clock,
      watch: (key, options) => provider.watch(key, options),
      nativeWatch: false,
    });
    this.#provider = provider;
    this.#keepAlive = new KeepAlive({
      ttlMs,
      startedAt,
      clock: provider.clock,
      renew: () => this.#renew(),
      onLost: (error) => this.markSessionLost(error),
    }).start();
  }

  /** Test hook: behave like a crashed process (stop renewing, release nothing). */
  abandon() {
    this.#keepAlive.stop();
  }

  // Renews the session and, in the same round trip, learns which locks it still holds: a lease that an
  // operator force-released (or that was taken after expiry) is marked lost here.
  async #renew() {
    const p = this.#provider;
    const sentAt = this.clock.monotonicNow();
    const { rows } = await p.query(
      `WITH s AS (
         UPDATE ${p.t('sessions')} SET expires_at = clock_timestamp() + ttl_ms * interval '1 millisecond'
         WHERE id = $1 AND expires_at > clock_timestamp() RETURNING id
       )
       SELECT EXISTS (SELECT 1 FROM s) AS alive,
              coalesce((SELECT json_agg(json_build_array(key, fence)) FROM ${p.t('locks')} WHERE session_id = $1), '[]') AS held`,
      [this.id],
      `${NAME}: renewing session ${this.id}`,
    );
    const row = rows[0];
    if (!row?.alive)
      throw new SessionLostError(`${NAME}: session ${this.id} expired at the server`, { backend: NAME });
    const held = new Set(row.held.map(([key, fence]) => `${fence}:${key}`));
    for (const lease of this.leases()) {
      if (lease.acquiredAt < sentAt && !held.has(`${lease.fence}:${lease.key}`)) {
        lease.markLost(
          new LeaseLostError(`lease '${lease.key}' was taken away at the server`, { backend: NAME }),
        );
      }
    }
  }

  async acquireOnce(key, options) {
    const p = this.#provider;
    const { rows } = await p.query(
      `WITH me AS (
         SELECT id FROM ${p.t('sessions')} WHERE id = $1::uuid AND expires_at > clock_timestamp()
       ), taken AS (
         INSERT INTO ${p.t('locks')} AS l (key, session_id, fence, value, min_until)
         SELECT $2::text, me.id, nextval('${p.t('fence_seq')}'), $3::text,
                clock_timestamp() + $4::int * interval '1 millisecond'
         FROM me
         ON CONFLICT (key) DO UPDATE
           SET session_id = excluded.session_id, fence = excluded.fence, value = excluded.value,
               min_until = excluded.min_until
           WHERE l.min_until <= clock_timestamp()
             AND NOT EXISTS (
               SELECT 1 FROM ${p.t('sessions')} h
               WHERE h.id = l.session_id
                 AND h.expires_at + h.lock_delay_ms * interval '1 millisecond' > clock_timestamp())
         RETURNING l.fence
       )
       SELECT EXISTS (SELECT 1 FROM me) AS alive, (SELECT fence FROM taken) AS fence`,
      [this.id, key, options.value ?? null, Math.max(0, Math.ceil(options.lockAtLeastForMs ?? 0))],
      `${NAME}: acquiring '${key}'`,
    );
    const row = rows[0];
    if (!row?.alive) {
      const error = new SessionLostError(`${NAME}: session ${this.id} expired at the server`, {
        backend: NAME,
      });
      this.markSessionLost(error);
      throw error;
    }
    if (row.fence === null) return null;
    return { fence: toFence(row.fence), value: options.value, state: undefined };
  }

  async releaseOnce(lease) {
    const p = this.#provider;
    // The row goes with the release (fences come from the sequence, not the row), unless a lockAtLeastFor
    // window still runs: then it stays, free, until the next holder takes it over.
    const { rows } = await p.query(
      `WITH mine AS (
         SELECT key, min_until <= clock_timestamp() AS done FROM ${p.t('locks')}
         WHERE key = $1 AND session_id = $2 AND fence = $3
           AND EXISTS (SELECT 1 FROM ${p.t('sessions')} s WHERE s.id = $2 AND s.expires_at > clock_timestamp())
         FOR UPDATE
       ), gone AS (
         DELETE FROM ${p.t('locks')} l USING mine WHERE l.key = mine.key AND mine.done RETURNING 1
       ), kept AS (
         UPDATE ${p.t('locks')} l SET session_id = NULL, value = NULL
         FROM mine WHERE l.key = mine.key AND NOT mine.done RETURNING 1
       )
       SELECT (SELECT count(*) FROM gone) + (SELECT count(*) FROM kept) AS n`,
      [lease.key, this.id, lease.fence],
      `${NAME}: releasing '${lease.key}'`,
    );
    return Number(rows[0]?.n ?? 0) > 0;
  }

  async publishOnce(lease, value) {
    const p = this.#provider;
    const { rowCount } = await p.query(
      `UPDATE ${p.t('locks')} SET value = $4
       WHERE key = $1 AND session_id = $2 AND fence = $3
         AND EXISTS (SELECT 1 FROM ${p.t('sessions')} s WHERE s.id = $2 AND s.expires_at > clock_timestamp())`,
      [lease.key, this.id, lease.fence, value],
      `${NAME}: publishing on '${lease.key}'`,
    );
    if ((rowCount ?? 0) === 0) {
      const error = new LeaseLostError(`lease '${lease.key}' is no longer held`, { backend: NAME });
      lease.markLost(error);
      throw error;
    }
  }

  async endSession() {
    this.#keepAlive.stop();
    const p = this.#provider;
    await p.query(
      `DELETE FROM ${p.t('sessions')} WHERE id = $1`,
      [this.id],
      `${NAME}: ending session ${this.id}`,
    );
  }
}

function toFence(value) {
  const fence = Number(value);
  if (!Number.isSafeInteger(fence) || fence <= 0) {
    throw new ProtocolError(`${NAME}: fence ${value} is not a positive safe integer`, { backend: NAME });
  }
  return fence;
}

function toHolder(row) {
  return {
    key: row.key,
    sessionId: row.session_id,
    fence: toFence(row.fence),
    value: row.value ?? undefined,
  };
}
