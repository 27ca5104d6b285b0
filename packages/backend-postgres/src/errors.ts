import {
  type BatonError,
  PermissionDeniedError,
  ResourceNotFoundError,
  redact,
  SessionLostError,
  UnavailableError,
} from '@baton/core';
import { isConnectFailure, sqlState, toBatonError } from '@baton/source-postgres';

/** Backend name carried by every error of this package. */
export const BACKEND = 'postgres';

/** Where error messages point the user: the variable that named the database, the schema of the locks. */
export interface ErrorContext {
  readonly urlSource: string;
  readonly schema: string;
}

/** The least privilege baton needs on its schema, for permission errors. */
export function grantsHint(schema: string): string {
  return (
    `GRANT USAGE ON SCHEMA ${schema} TO <role>; GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${schema} TO <role>; ` +
    `GRANT USAGE ON ALL SEQUENCES IN SCHEMA ${schema} TO <role>; GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA ${schema} TO <role>`
  );
}

/**
 * The typed baton error for a failure of `pg` during `operation`, keeping `pg`'s error as `cause`. As the
 * task source maps them (transport → `UNAVAILABLE`, never "not acquired"), plus: a wrong password
 * (class 28) is `PERMISSION_DENIED` naming the variable to fix, a missing privilege names the grants, and a
 * missing schema, table or function says how to create it.
 */
export function pgLockError(error: unknown, operation: string, context: ErrorContext): BatonError {
  const state = sqlState(error);
  const detail = redact(error instanceof Error ? error.message : String(error));
  const options = { cause: error, backend: BACKEND };
  if (state?.startsWith('28')) {
    return new PermissionDeniedError(
      `postgres: cannot connect to the database: ${detail} (SQLSTATE ${state}). Fix: check the user and ` +
        `password in ${context.urlSource} (or PGUSER/PGPASSWORD), and pg_hba.conf for this host.`,
      options,
    );
  }
  if (state === '42501') {
    return new PermissionDeniedError(
      `postgres: ${operation} failed: ${detail} (SQLSTATE 42501). Fix: ${grantsHint(context.schema)}.`,
      options,
    );
  }
  if (state === '3F000' || state === '42P01' || state === '42883') {
    return new ResourceNotFoundError(
      `postgres: ${operation} failed: ${detail} (SQLSTATE ${state}). Fix: create the lock tables in schema ` +
        `'${context.schema}': set BATON_PG_LOCK_MIGRATE=true (the default) for a role allowed to create ` +
        'it, or call PgLockProvider.migrate() once as such a role.',
      options,
    );
  }
  if (state === undefined && isConnectFailure(error)) {
    return new UnavailableError(
      `${toBatonError(error, operation).message}. Fix: check the host and port in ${context.urlSource}, ` +
        'and that the server runs and accepts connections from here.',
      options,
    );
  }
  return toBatonError(error, operation);
}

/** The server no longer knows (or no longer trusts) a session. */
export function sessionGone(id: string): SessionLostError {
  return new SessionLostError(`postgres: session ${id} expired at the server (database clock)`, {
    backend: BACKEND,
  });
}
