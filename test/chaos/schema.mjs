// The chaos run's side tables, next to baton's tasks table: what the handler and a trigger record, and what
// the checker reads afterwards.

/** Quotes a validated SQL identifier. */
export function ident(name) {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`not a safe SQL identifier: ${name}`);
  return `"${name}"`;
}

/**
 * Creates the side tables in `side` and the trigger on `<batonSchema>.tasks`:
 *
 * - `executions`: one row per handler execution, written *without* a fence (raw executions);
 * - `effects`: the task's effect, one row per task, written *with* the fence (see `effectSql`);
 * - `effect_log`: every effect attempt and whether the fence let it through;
 * - `transitions`: every change of a task's status or fence, written by a trigger (claims, completions,
 *   failures, burials), with the database's clock;
 * - `bucket_leases`: every write of a row of baton's `bucket_leases` (bucket mode: each claim raises or
 *   confirms its bucket's lock fence there), written by a trigger.
 *
 * Both triggers draw their row ids from one sequence (`seq`) and record the transaction (`txid`): rows of one
 * bucket are written under that bucket's row lock (a claim holds it exclusively until commit, a settle
 * share-locks it), so ordered by id they show which lease record every claim and settle ran under.
 */
export function sideSchemaSql(side, batonSchema) {
  const s = ident(side);
  const tasks = `${ident(batonSchema)}.tasks`;
  const bucketLeases = `${ident(batonSchema)}.bucket_leases`;
  return `
    CREATE SCHEMA IF NOT EXISTS ${s};
    CREATE SEQUENCE ${s}.seq;
    CREATE TABLE ${s}.executions (
      id bigserial PRIMARY KEY,
      task_id bigint NOT NULL,
      fence bigint NOT NULL,
      worker text NOT NULL,
      attempt integer NOT NULL,
      started_at timestamptz NOT NULL,
      ended_at timestamptz,
      outcome text,
      permit_key text,
      permit_fence bigint
    );
    CREATE TABLE ${s}.effects (
      task_id bigint PRIMARY KEY,
      fence bigint NOT NULL,
      worker text NOT NULL,
      applied_at timestamptz NOT NULL
    );
    CREATE TABLE ${s}.effect_log (
      id bigserial PRIMARY KEY,
      task_id bigint NOT NULL,
      fence bigint NOT NULL,
      worker text NOT NULL,
      applied boolean NOT NULL,
      at timestamptz NOT NULL
    );
    CREATE TABLE ${s}.transitions (
      id bigint PRIMARY KEY DEFAULT nextval('${s}.seq'),
      task_id bigint NOT NULL,
      old_status text,
      new_status text NOT NULL,
      old_fence bigint,
      new_fence bigint,
      worker_id text,
      attempts integer NOT NULL,
      shard integer NOT NULL,
      lease_epoch integer,
      txid bigint NOT NULL,
      at timestamptz NOT NULL
    );
    CREATE FUNCTION ${s}.record_transition() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO ${s}.transitions
        (task_id, old_status, new_status, old_fence, new_fence, worker_id, attempts, shard, lease_epoch, txid, at)
      VALUES (NEW.id, OLD.status, NEW.status, OLD.fence, NEW.fence, NEW.worker_id, NEW.attempts, NEW.shard,
              NEW.lease_epoch, txid_current(), clock_timestamp());
      RETURN NULL;
    END $$;
    CREATE TRIGGER chaos_transitions AFTER UPDATE ON ${tasks}
      FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.fence IS DISTINCT FROM NEW.fence)
      EXECUTE FUNCTION ${s}.record_transition();
    CREATE TABLE ${s}.bucket_leases (
      id bigint PRIMARY KEY DEFAULT nextval('${s}.seq'),
      epoch integer NOT NULL,
      bucket integer NOT NULL,
      lock_fence bigint NOT NULL,
      since_token bigint NOT NULL,
      worker_id text,
      txid bigint NOT NULL,
      at timestamptz NOT NULL
    );
    CREATE FUNCTION ${s}.record_bucket_lease() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO ${s}.bucket_leases (epoch, bucket, lock_fence, since_token, worker_id, txid, at)
      VALUES (NEW.epoch, NEW.bucket, NEW.lock_fence, NEW.since_token, NEW.worker_id, txid_current(),
              clock_timestamp());
      RETURN NULL;
    END $$;
    CREATE TRIGGER chaos_bucket_leases AFTER INSERT OR UPDATE ON ${bucketLeases}
      FOR EACH ROW EXECUTE FUNCTION ${s}.record_bucket_lease();`;
}

/**
 * $1 task id, $2 fence, $3 worker, $4 attempt, $5 and $6 the permit's slot key and fence (a task of a limited
 * kind; null otherwise). Raw: no fence check.
 */
export function startExecutionSql(side) {
  return `INSERT INTO ${ident(side)}.executions (task_id, fence, worker, attempt, permit_key, permit_fence, started_at)
          VALUES ($1::bigint, $2::bigint, $3, $4, $5, $6::bigint, clock_timestamp()) RETURNING id::text AS id`;
}

/** $1 execution id, $2 outcome. */
export function endExecutionSql(side) {
  return `UPDATE ${ident(side)}.executions SET ended_at = clock_timestamp(), outcome = $2 WHERE id = $1::bigint`;
}

/**
 * The task's effect: $1 task id, $2 fence, $3 worker; returns `applied`. Fenced, it applies only while the
 * task is running under this very fence (the task row is locked, so a concurrent claim waits for it and its
 * transition is stamped later), and never replaces the effect of a newer fence. `fenced: false` is the
 * planted fault of the checker's tests: an effect written without looking at the fence.
 */
export function effectSql(side, batonSchema, { fenced = true } = {}) {
  const s = ident(side);
  const tasks = `${ident(batonSchema)}.tasks`;
  const guard = fenced
    ? `SELECT t.id FROM ${tasks} AS t WHERE t.id = $1::bigint AND t.fence = $2::bigint AND t.status = 'running' FOR UPDATE`
    : `SELECT $1::bigint AS id`;
  const keep = fenced ? 'WHERE e.fence < excluded.fence' : '';
  return `
    WITH current_claim AS (${guard}),
    applied AS (
      INSERT INTO ${s}.effects AS e (task_id, fence, worker, applied_at)
      SELECT $1::bigint, $2::bigint, $3, clock_timestamp() FROM current_claim
      ON CONFLICT (task_id) DO UPDATE
        SET fence = excluded.fence, worker = excluded.worker, applied_at = excluded.applied_at ${keep}
      RETURNING applied_at
    )
    INSERT INTO ${s}.effect_log (task_id, fence, worker, applied, at)
    SELECT $1::bigint, $2::bigint, $3, EXISTS (SELECT 1 FROM applied),
           COALESCE((SELECT applied_at FROM applied), clock_timestamp())
    RETURNING applied`;
}
