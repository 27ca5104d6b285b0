import { toBatonError } from './errors.js';
import type { PgPool, PgPoolClient } from './pool.js';

/**
 * Runs `body` in a transaction on one connection of `pool`: COMMIT when it resolves, ROLLBACK when it throws.
 * Errors become `BatonError`s naming `operation`; a connection that broke mid-way is destroyed, not reused.
 */
export async function inTransaction<T>(
  pool: PgPool,
  operation: string,
  schema: string,
  body: (client: PgPoolClient) => Promise<T>,
): Promise<T> {
  let client: PgPoolClient;
  try {
    client = await pool.connect();
  } catch (error) {
    throw toBatonError(error, operation, schema);
  }
  // A connection that dies mid-transaction is reported by the statement in flight, not as an event.
  const ignore = () => {};
  client.on('error', ignore);
  let broken: unknown;
  try {
    await client.query('BEGIN');
    const result = await body(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    broken = error;
    await client.query('ROLLBACK').catch(() => {});
    throw toBatonError(error, operation, schema);
  } finally {
    client.removeListener('error', ignore);
    client.release(broken instanceof Error && isConnectionLevel(broken) ? broken : undefined);
  }
}

/** pg's server errors carry a severity; errors without one are about the connection itself. */
function isConnectionLevel(error: Error): boolean {
  return (error as { severity?: unknown }).severity === undefined;
}
