import { createHash } from 'node:crypto';
import { quoteIdentifier } from '@baton/source-postgres';

/** The NOTIFY channel of a lock schema: a hash, so any schema name fits PostgreSQL's 63-byte identifiers. */
export function lockChannel(schema: string): string {
  return `baton_locks_${createHash('sha256').update(schema).digest('hex').slice(0, 16)}`;
}

/** The seed of `hashtextextended` for a schema's per-key advisory locks: schemas never block each other. */
export function advisorySeed(schema: string): string {
  return createHash('sha256').update(`baton:locks:${schema}`).digest().readBigInt64BE(0).toString();
}

/** One schema change. Versions are applied in order, each at most once per schema. */
export interface LockMigration {
  readonly version: number;
  readonly name: string;
  /** SQL for the given (validated) schema name; may hold several statements. */
  sql(schema: string): string;
}

/**
 * The lock schema, oldest first (append only). Sessions and locks are rows; fences come from one sequence;
 * every time comparison uses the database's `clock_timestamp()`, never a client's clock.
 */
export const LOCK_MIGRATIONS: readonly LockMigration[] = [
  {
    version: 1,
    name: 'sessions, locks, fence sequence, acquire and release',
    sql: (schema) => {
      const s = quoteIdentifier(schema);
      const channel = lockChannel(schema);
      const seed = advisorySeed(schema);
      return `
      CREATE SEQUENCE ${s}.fence_seq;
      -- A session lives while expires_at is ahead of the database's clock; renewing pushes it forward.
      -- free_at = expires_at + the lock-delay: after it, nothing of the session matters any more.
      CREATE TABLE ${s}.sessions (
        id uuid PRIMARY KEY,
        name text,
        ttl_ms integer NOT NULL CONSTRAINT sessions_ttl_check CHECK (ttl_ms > 0),
        lock_delay_ms integer NOT NULL CONSTRAINT sessions_delay_check CHECK (lock_delay_ms >= 0),
        expires_at timestamptz NOT NULL,
        free_at timestamptz NOT NULL
      );
      CREATE INDEX sessions_free_at_idx ON ${s}.sessions (free_at);
      -- A lock row names its holding session (NULL: released, kept only until min_until, lockAtLeastFor).
      CREATE TABLE ${s}.locks (
        key text PRIMARY KEY,
        session_id uuid,
        fence bigint NOT NULL CONSTRAINT locks_fence_check CHECK (fence > 0),
        value text,
        min_until timestamptz NOT NULL
      );
      CREATE INDEX locks_session_idx ON ${s}.locks (session_id);
      CREATE INDEX locks_released_idx ON ${s}.locks (min_until) WHERE session_id IS NULL;

${acquireFunction(s, channel, seed, 'CREATE')}

      -- Releases p_key if this session still holds it with this fence and is alive: deletes the row, or,
      -- inside a lockAtLeastFor window, keeps it without a holder until min_until. Returns whether it did.
      CREATE FUNCTION ${s}.release(p_session uuid, p_key text, p_fence bigint)
      RETURNS boolean LANGUAGE plpgsql AS $fn$
      DECLARE
        v_now timestamptz := clock_timestamp();
        v_min timestamptz;
      BEGIN
        PERFORM 1 FROM ${s}.sessions WHERE id = p_session AND expires_at > v_now;
        IF NOT FOUND THEN RETURN false; END IF;
        SELECT min_until INTO v_min FROM ${s}.locks
         WHERE key = p_key AND session_id = p_session AND fence = p_fence FOR UPDATE;
        IF NOT FOUND THEN RETURN false; END IF;
        IF v_min > v_now THEN
          UPDATE ${s}.locks SET session_id = NULL, value = NULL WHERE key = p_key;
        ELSE
          DELETE FROM ${s}.locks WHERE key = p_key;
        END IF;
        PERFORM pg_notify('${channel}', p_key);
        RETURN true;
      END
      $fn$;
      COMMENT ON TABLE ${s}.locks IS 'baton locks: one row per held key, fenced by fence_seq';`;
    },
  },
  {
    version: 2,
    name: 'acquisition time of each lock (acquired_at, the database clock)',
    sql: (schema) => {
      const s = quoteIdentifier(schema);
      return `
      -- NULL on rows granted before this version: they report no acquisition time until taken again.
      ALTER TABLE ${s}.locks ADD COLUMN acquired_at timestamptz;
      ${acquireFunction(s, lockChannel(schema), advisorySeed(schema), 'CREATE OR REPLACE')}`;
    },
  },
];

/** The newest lock schema version this package knows. */
export const LATEST_LOCK_VERSION = LOCK_MIGRATIONS.at(-1)!.version;

/**
 * The `acquire` function (see migration 1). `CREATE` without the grant time is version 1's, kept as it was;
 * version 2 replaces it with one that also stamps `acquired_at` with the database's clock.
 */
function acquireFunction(
  s: string,
  channel: string,
  seed: string,
  verb: 'CREATE' | 'CREATE OR REPLACE',
): string {
  const stamp = verb === 'CREATE OR REPLACE';
  const stampSet = stamp ? ', acquired_at = clock_timestamp()' : '';
  return `
      -- Takes p_key for p_session if it is free: no row; or a released row whose lockAtLeastFor is over;
      -- or a row whose session expired and whose lock-delay passed. Per-key advisory lock first, then row
      -- locks, read at their latest version (a renewal in flight is waited for, never judged stale).
      ${verb} FUNCTION ${s}.acquire(p_session uuid, p_key text, p_value text, p_min_ms bigint,
                                   OUT alive boolean, OUT fence bigint)
      LANGUAGE plpgsql AS $fn$
      DECLARE
        v_expires timestamptz;
        v_delay integer;
        v_lock ${s}.locks%ROWTYPE;
      BEGIN
        PERFORM pg_advisory_xact_lock(hashtextextended(p_key, ${seed}));
        SELECT expires_at INTO v_expires FROM ${s}.sessions WHERE id = p_session FOR SHARE;
        alive := FOUND AND v_expires > clock_timestamp();
        IF NOT alive THEN RETURN; END IF;
        SELECT * INTO v_lock FROM ${s}.locks WHERE key = p_key FOR UPDATE;
        IF FOUND THEN
          IF v_lock.min_until > clock_timestamp() THEN RETURN; END IF;
          IF v_lock.session_id IS NOT NULL THEN
            SELECT expires_at, lock_delay_ms INTO v_expires, v_delay
              FROM ${s}.sessions WHERE id = v_lock.session_id FOR SHARE;
            IF FOUND AND v_expires + v_delay * interval '1 millisecond' > clock_timestamp() THEN RETURN; END IF;
          END IF;
          fence := nextval('${s}.fence_seq');
          UPDATE ${s}.locks SET session_id = p_session, fence = acquire.fence, value = p_value,
                 min_until = clock_timestamp() + p_min_ms * interval '1 millisecond'${stampSet}
           WHERE key = p_key;
        ELSE
          fence := nextval('${s}.fence_seq');
          INSERT INTO ${s}.locks (key, session_id, fence, value, min_until${stamp ? ', acquired_at' : ''})
          VALUES (p_key, p_session, fence, p_value,
                  clock_timestamp() + p_min_ms * interval '1 millisecond'${stamp ? ', clock_timestamp()' : ''});
        END IF;
        PERFORM pg_notify('${channel}', p_key);
      END
      $fn$;`;
}
