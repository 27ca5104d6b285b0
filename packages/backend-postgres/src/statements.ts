import { quoteIdentifier } from '@baton/source-postgres';
import { lockChannel } from './schema.js';

/** Rows a sweep removes at most per table, so that one sweep stays one short statement. */
export const SWEEP_BATCH = 500;

/** The SQL of every operation, for one (validated) schema. Values are always parameters. */
export function lockStatements(schema: string) {
  const s = quoteIdentifier(schema);
  const channel = lockChannel(schema);
  const ms = "* interval '1 millisecond'";
  // Times on the database's clock: the grant (NULL on rows from before schema version 2) and what is left
  // of the holder's session, as the same statement's clock_timestamp() sees it.
  const holderColumns = `l.key, l.session_id::text AS session_id, l.fence::text AS fence, l.value,
      floor(extract(epoch FROM l.acquired_at) * 1000)::bigint::text AS acquired_ms,
      greatest(0, ceil(extract(epoch FROM h.expires_at - clock_timestamp()) * 1000))::bigint::text AS remaining_ms`;
  return {
    channel,
    openSession: `INSERT INTO ${s}.sessions (id, name, ttl_ms, lock_delay_ms, expires_at, free_at)
      SELECT $1::uuid, $2::text, $3::int, $4::int, t.now + $3::int ${ms}, t.now + ($3::int + $4::int) ${ms}
      FROM (SELECT clock_timestamp() AS now) t`,
    // Renews the session and, in the same round trip, lists the keys whose rows still name it.
    renew: `WITH t AS (SELECT clock_timestamp() AS now),
      me AS (
        UPDATE ${s}.sessions SET expires_at = t.now + ttl_ms ${ms}, free_at = t.now + (ttl_ms + lock_delay_ms) ${ms}
        FROM t WHERE id = $1::uuid AND expires_at > t.now RETURNING id)
      SELECT EXISTS (SELECT 1 FROM me) AS alive,
        coalesce((SELECT json_agg(json_build_array(key, fence::text)) FROM ${s}.locks WHERE session_id = $1::uuid),
                 '[]'::json) AS held`,
    acquire: `SELECT alive, fence::text AS fence FROM ${s}.acquire($1::uuid, $2::text, $3::text, $4::bigint)`,
    release: `SELECT ${s}.release($1::uuid, $2::text, $3::bigint) AS released`,
    publish: `UPDATE ${s}.locks l SET value = $4::text
      WHERE key = $1::text AND session_id = $2::uuid AND fence = $3::bigint
        AND EXISTS (SELECT 1 FROM ${s}.sessions h WHERE h.id = $2::uuid AND h.expires_at > clock_timestamp())
      RETURNING pg_notify('${channel}', l.key)::text`,
    // A clean end: keys still named by the session are freed (kept without holder inside lockAtLeastFor).
    endSession: `WITH t AS (SELECT clock_timestamp() AS now),
      gone AS (DELETE FROM ${s}.sessions WHERE id = $1::uuid RETURNING id),
      kept AS (UPDATE ${s}.locks l SET session_id = NULL, value = NULL FROM t
               WHERE l.session_id = $1::uuid AND l.min_until > t.now RETURNING l.key),
      dropped AS (DELETE FROM ${s}.locks l USING t
                  WHERE l.session_id = $1::uuid AND l.min_until <= t.now RETURNING l.key)
      SELECT pg_notify('${channel}', k.key)::text FROM (SELECT key FROM kept UNION ALL SELECT key FROM dropped) k`,
    // Forgets sessions whose lock-delay is over (their rows go with them, or lose their holder inside a
    // lockAtLeastFor window) and rows released inside such a window once it is over. Bounded per call.
    sweep: `WITH t AS (SELECT clock_timestamp() AS now),
      dead AS (
        DELETE FROM ${s}.sessions WHERE id IN (
          SELECT id FROM ${s}.sessions WHERE free_at < clock_timestamp()
          ORDER BY free_at LIMIT ${SWEEP_BATCH} FOR UPDATE SKIP LOCKED)
        RETURNING id),
      kept AS (UPDATE ${s}.locks l SET session_id = NULL, value = NULL FROM dead, t
               WHERE l.session_id = dead.id AND l.min_until > t.now RETURNING l.key),
      dropped AS (DELETE FROM ${s}.locks l USING dead, t
                  WHERE l.session_id = dead.id AND l.min_until <= t.now RETURNING l.key),
      released AS (
        DELETE FROM ${s}.locks l USING t
        WHERE l.session_id IS NULL AND l.min_until <= t.now AND l.key IN (
          SELECT key FROM ${s}.locks WHERE session_id IS NULL AND min_until <= clock_timestamp()
          ORDER BY min_until LIMIT ${SWEEP_BATCH})
        RETURNING l.key)
      SELECT (SELECT count(*) FROM dead)::int AS sessions,
             ((SELECT count(*) FROM dropped) + (SELECT count(*) FROM released))::int AS locks`,
    holder: `SELECT ${holderColumns} FROM ${s}.locks l JOIN ${s}.sessions h ON h.id = l.session_id
      WHERE l.key = $1::text AND h.expires_at > clock_timestamp()`,
    list: `SELECT ${holderColumns} FROM ${s}.locks l JOIN ${s}.sessions h ON h.id = l.session_id
      WHERE starts_with(l.key, $1::text) AND h.expires_at > clock_timestamp() ORDER BY l.key COLLATE "C"`,
    forceRelease: `DELETE FROM ${s}.locks l WHERE key = $1::text AND session_id IS NOT NULL
      RETURNING pg_notify('${channel}', l.key)::text`,
  } as const;
}

/** The statements of one schema. */
export type LockStatements = ReturnType<typeof lockStatements>;
