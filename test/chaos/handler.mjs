// The chaos run's task handler, loaded by `baton worker --handler test/chaos/handler.mjs`. It records every
// execution without the fence (raw executions, duplicates included) and applies the task's effect with the
// fence, the way a production handler must. A task of the limited kind (`--limit`) also records the permit it
// ran under (slot key and fence); start and end are stamped by the database clock. Its behaviour per task
// comes from the payload the harness drew from the seed: { ms, failOn: [attempts], poison, ignoreAbort }.
//
// Environment: DATABASE_URL (the worker's own, through its proxy), BATON_PG_SCHEMA, CHAOS_SIDE_SCHEMA, and
// CHAOS_HANDLER_MODE=unfenced for the planted fault of the checker's tests (effects without the fence).

import { invalidTask } from '@baton/core';
import pg from 'pg';
import { effectSql, endExecutionSql, startExecutionSql } from './schema.mjs';

const env = process.env;
const side = env.CHAOS_SIDE_SCHEMA;
const batonSchema = env.BATON_PG_SCHEMA ?? 'baton';
if (!side) throw new Error('CHAOS_SIDE_SCHEMA is not set');

const pool = new pg.Pool({
  connectionString: env.DATABASE_URL,
  max: 4,
  connectionTimeoutMillis: 5_000,
  idleTimeoutMillis: 10_000,
  keepAlive: true,
  application_name: 'chaos-handler',
});
// An idle connection cut by a network fault must not crash the worker; the next query reconnects.
pool.on('error', () => {});

// The planted fault: a handler that neither checks the fence nor stops when its lease is lost.
const fenced = env.CHAOS_HANDLER_MODE !== 'unfenced';
const statements = {
  start: startExecutionSql(side),
  end: endExecutionSql(side),
  effect: effectSql(side, batonSchema, { fenced }),
};

function pause(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Runs one chaos task. */
export default async function chaosTask({ task, fence, signal, workerId, permit }) {
  const spec = task.payload ?? {};
  const { rows } = await pool.query(statements.start, [
    task.id,
    fence,
    workerId,
    task.attempts,
    permit?.key ?? null,
    permit?.fence ?? null,
  ]);
  const execution = rows[0].id;
  let outcome = 'threw';
  try {
    if (spec.poison) {
      outcome = 'poison';
      throw invalidTask(`task ${task.id} is poison`);
    }
    await pause(spec.ms ?? 50, spec.ignoreAbort || !fenced ? undefined : signal);
    if (Array.isArray(spec.failOn) && spec.failOn.includes(task.attempts)) {
      outcome = 'failed';
      throw new Error(`simulated failure of attempt ${task.attempts}`);
    }
    const effect = await pool.query(statements.effect, [task.id, fence, workerId]);
    if (!effect.rows[0]?.applied) {
      outcome = 'effect-rejected';
      throw new Error(`effect rejected: fence ${fence} is no longer the running claim of task ${task.id}`);
    }
    outcome = 'effect-applied';
    return { fence, workerId };
  } catch (error) {
    if (outcome === 'threw' && signal.aborted) outcome = 'aborted';
    throw error;
  } finally {
    await pool.query(statements.end, [execution, outcome]).catch(() => {});
  }
}
