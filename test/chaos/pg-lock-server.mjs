// PostgreSQL as the lock server of a chaos run (`packages/backend-postgres`): the locks live in a database of
// their own on the machine's PostgreSQL (the one DATABASE_URL names; the tasks stay in theirs), migrated by the
// backend's own `migrateLocks`. Its history comes from PostgreSQL itself: triggers on the lock schema's
// `locks` and `sessions` tables log every write with the database's clock, in one sequence.
//
// A restart of PostgreSQL is not possible here (the tasks live on the same server). The "restart" fault does
// what a restart does to the lock backend's clients, honestly labelled: the workers' lock links refuse new
// connections (reset at the harness's proxies, as a server that is down refuses them) for the down time,
// every connection to the lock database is terminated (`pg_terminate_backend`: the clients see 57P01
// admin_shutdown, as in a real shutdown), then connections go through again. The lock state survives, as it
// would a restart. (Not `ALTER DATABASE ... ALLOW_CONNECTIONS false`: its error, 55000, is not what a restart
// gives clients.)

import { randomBytes } from 'node:crypto';
import { migrateLocks } from '@baton/backend-postgres';
import pg from 'pg';

const SCHEMA = 'baton_locks';

const historySql = (s) => `
  CREATE SEQUENCE ${s}.chaos_seq;
  CREATE TABLE ${s}.chaos_lock_history (
    id bigint PRIMARY KEY DEFAULT nextval('${s}.chaos_seq'), op text NOT NULL, key text NOT NULL,
    old_session uuid, old_fence bigint, new_session uuid, new_fence bigint,
    at timestamptz NOT NULL DEFAULT clock_timestamp());
  CREATE TABLE ${s}.chaos_session_history (
    id bigint PRIMARY KEY DEFAULT nextval('${s}.chaos_seq'), op text NOT NULL, session_id uuid NOT NULL,
    expires_at timestamptz, at timestamptz NOT NULL DEFAULT clock_timestamp());
  CREATE FUNCTION ${s}.chaos_lock_log() RETURNS trigger LANGUAGE plpgsql AS $fn$
  BEGIN
    IF TG_OP = 'INSERT' THEN
      INSERT INTO ${s}.chaos_lock_history (op, key, new_session, new_fence) VALUES ('insert', NEW.key, NEW.session_id, NEW.fence);
    ELSIF TG_OP = 'UPDATE' THEN
      INSERT INTO ${s}.chaos_lock_history (op, key, old_session, old_fence, new_session, new_fence)
      VALUES ('update', NEW.key, OLD.session_id, OLD.fence, NEW.session_id, NEW.fence);
    ELSE
      INSERT INTO ${s}.chaos_lock_history (op, key, old_session, old_fence) VALUES ('delete', OLD.key, OLD.session_id, OLD.fence);
    END IF;
    RETURN NULL;
  END $fn$;
  CREATE TRIGGER chaos_lock_log AFTER INSERT OR UPDATE OR DELETE ON ${s}.locks
    FOR EACH ROW EXECUTE FUNCTION ${s}.chaos_lock_log();
  CREATE FUNCTION ${s}.chaos_session_log() RETURNS trigger LANGUAGE plpgsql AS $fn$
  BEGIN
    IF TG_OP = 'DELETE' THEN
      INSERT INTO ${s}.chaos_session_history (op, session_id) VALUES ('delete', OLD.id);
    ELSE
      INSERT INTO ${s}.chaos_session_history (op, session_id, expires_at) VALUES (lower(TG_OP), NEW.id, NEW.expires_at);
    END IF;
    RETURN NULL;
  END $fn$;
  CREATE TRIGGER chaos_session_log AFTER INSERT OR UPDATE OR DELETE ON ${s}.sessions
    FOR EACH ROW EXECUTE FUNCTION ${s}.chaos_session_log();`;

/**
 * Leases from the lock schema's history. A write that gives a key a holder with a new fence is a grant. A
 * lease ends when its row loses that holder (release, or the sweeper forgetting a dead session) or is taken
 * over; it is valid at the server until then, but never past its session's `expires_at` (every statement of
 * the backend compares it with the database's clock): a lease taken over or forgotten ends at its session's
 * last expiry (`expired`), a released one at its release.
 * @param {Array<{ id: number, op: string, key: string, oldSession: string | null, oldFence: number | null, newSession: string | null, newFence: number | null, at: number }>} lockRows
 * @param {Array<{ id: number, op: string, sessionId: string, expiresAt: number | null, at: number }>} sessionRows
 * @param {number} now the end of the run, epoch ms
 * @returns {import('./checker.mjs').Lease[]}
 */
export function leasesFromPgHistory(lockRows, sessionRows, now) {
  const rows = [
    ...lockRows.map((r) => ({ ...r, table: 'locks' })),
    ...sessionRows.map((r) => ({ ...r, table: 'sessions' })),
  ].sort((a, b) => a.id - b.id);
  const expiry = new Map();
  const open = new Map();
  const leases = [];
  const end = (key, at, taken) => {
    const held = open.get(key);
    if (!held) return;
    open.delete(key);
    const until = expiry.get(held.session) ?? Number.POSITIVE_INFINITY;
    if (taken || until <= at) {
      held.lease.end = until === Number.POSITIVE_INFINITY ? at : until;
      held.lease.endKind = 'expired';
    } else {
      held.lease.end = at;
      held.lease.endKind = 'released';
    }
  };
  for (const row of rows) {
    if (row.table === 'sessions') {
      if (row.op === 'delete') {
        expiry.set(row.sessionId, Math.min(expiry.get(row.sessionId) ?? row.at, row.at));
      } else expiry.set(row.sessionId, row.expiresAt);
      continue;
    }
    const granted =
      row.newSession !== null &&
      (row.op === 'insert' || row.newFence !== row.oldFence || row.oldSession === null);
    if (row.op === 'update' && !granted && row.newSession === row.oldSession) continue; // a published value
    end(row.key, row.at, granted);
    if (!granted) continue;
    const lease = {
      key: row.key,
      owner: row.newSession,
      fence: row.newFence,
      start: row.at,
      end: undefined,
      endKind: 'held',
    };
    leases.push(lease);
    open.set(row.key, { lease, session: row.newSession });
  }
  for (const { lease, session } of open.values()) {
    const until = expiry.get(session);
    if (until !== undefined && until <= now) {
      lease.end = until;
      lease.endKind = 'expired';
    }
  }
  return leases;
}

/**
 * A lock database on the PostgreSQL server `databaseUrl` names: created fresh (dropped on close), the lock
 * schema migrated by the backend, the history triggers added.
 * @param {{ databaseUrl: string, onEvent?: (event: object) => void }} options
 * @returns {Promise<import('./lock-servers.mjs').LockServer>}
 */
export async function startPgLockServer({ databaseUrl, onEvent = () => {} }) {
  const adminUrl = new URL(databaseUrl);
  const database = `baton_chaos_locks_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Pool({ connectionString: adminUrl.toString(), max: 1 });
  admin.on('error', () => {});
  await admin.query(`CREATE DATABASE ${database}`);
  const lockUrl = new URL(adminUrl);
  lockUrl.pathname = `/${database}`;
  const connectLocks = () => {
    const pool = new pg.Pool({ connectionString: lockUrl.toString(), max: 1 });
    pool.on('error', () => {});
    return pool;
  };
  const setup = connectLocks();
  await migrateLocks(setup, SCHEMA);
  await setup.query(historySql(SCHEMA));
  await setup.end();
  const proxyUrl = (port) => {
    const url = new URL(lockUrl);
    url.hostname = '127.0.0.1';
    url.port = String(port);
    return url.toString();
  };
  return {
    name: 'postgres',
    target: { host: adminUrl.hostname, port: Number(adminUrl.port || 5432) },
    env: (port) => ({
      BATON_BACKEND: 'postgres',
      BATON_LOCK_DATABASE_URL: proxyUrl(port),
      BATON_PG_LOCK_SCHEMA: SCHEMA,
      BATON_PG_LOCK_MIGRATE: 'false',
    }),
    loseAnswers: undefined,
    clear: () => {},
    async restart(downMs, gate) {
      gate.refuse(true);
      try {
        const { rows } = await admin.query(
          'SELECT count(*)::int AS n FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1) t',
          [database],
        );
        onEvent({ type: 'lock-server-killed', terminated: rows[0].n });
        await new Promise((resolve) => setTimeout(resolve, downMs));
      } finally {
        gate.refuse(false);
      }
      onEvent({ type: 'lock-server-restarted' });
    },
    history: async () => {
      const pool = connectLocks();
      try {
        const [locks, sessions] = await Promise.all([
          pool.query(
            `SELECT id, op, key, old_session, old_fence::text, new_session, new_fence::text, at FROM ${SCHEMA}.chaos_lock_history`,
          ),
          pool.query(`SELECT id, op, session_id, expires_at, at FROM ${SCHEMA}.chaos_session_history`),
        ]);
        const num = (v) => (v === null ? null : Number(v));
        const leases = leasesFromPgHistory(
          locks.rows.map((r) => ({
            id: Number(r.id),
            op: r.op,
            key: r.key,
            oldSession: r.old_session,
            oldFence: num(r.old_fence),
            newSession: r.new_session,
            newFence: num(r.new_fence),
            at: r.at.getTime(),
          })),
          sessions.rows.map((r) => ({
            id: Number(r.id),
            op: r.op,
            sessionId: r.session_id,
            expiresAt: r.expires_at?.getTime() ?? null,
            at: r.at.getTime(),
          })),
          Date.now(),
        );
        return { leases, grantViolations: [], exactFences: true, records: locks.rowCount };
      } finally {
        await pool.end();
      }
    },
    close: async () => {
      await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => {});
      await admin.end();
    },
  };
}
