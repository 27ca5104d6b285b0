import {
  BatonError,
  type BatonErrorOptions,
  InvalidArgumentError,
  PermissionDeniedError,
  ProtocolError,
  ResourceNotFoundError,
  redact,
  TimeoutError,
  UnavailableError,
} from '@baton/core';

/** Backend name carried by every error of this package. */
export const BACKEND = 'postgres';

/** A stored task row the source cannot turn into a `Task` (code `TASK_INVALID`). */
export class InvalidTaskRowError extends BatonError {
  /** Id of the offending row. */
  readonly taskId: string;
  /** Column that could not be decoded. */
  readonly column: string;

  constructor(taskId: string, column: string, problem: string, options: BatonErrorOptions = {}) {
    super('TASK_INVALID', `task ${taskId} cannot be read: column ${column} ${problem}`, {
      backend: BACKEND,
      ...options,
    });
    this.taskId = taskId;
    this.column = column;
  }
}

/** SQLSTATEs after which the same statement may well succeed later. */
const TRANSIENT_STATES = new Set([
  '57P01', // admin_shutdown (server restart, pg_terminate_backend)
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up)
  '57P05', // idle_session_timeout
  '53000', // insufficient_resources
  '53100', // disk_full
  '53200', // out_of_memory
  '53300', // too_many_connections
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '55P03', // lock_not_available
  '58000', // system_error
  '58030', // io_error
  '25006', // read_only_sql_transaction (failover to a replica)
]);

/** SQLSTATEs that mean the schema, table or database baton needs is not there (or not at this version). */
const MISSING_STATES = new Set(['3D000', '3F000', '42P01', '42703', '42883']);

/** Node error codes of a connection that was never made (as opposed to one that broke mid-statement). */
const CONNECT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'ENOENT',
]);

/** SQLSTATEs the server only sends while a connection is being set up. */
const CONNECT_STATES = new Set(['3D000', '08001', '08004', '57P03', '53300']);

/**
 * True when `error` means no connection could be made at all (refused, unresolvable, timed out while
 * connecting, TLS refused, authentication failed, no such database): whatever baton was about to do, it
 * never got to run, so messages say "cannot connect" rather than naming the operation.
 */
export function isConnectFailure(error: unknown): boolean {
  const state = sqlState(error);
  if (state !== undefined) {
    return state.startsWith('28') || CONNECT_STATES.has(state) || isRefusedByDatabase(error, state);
  }
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && CONNECT_CODES.has(code)) return true;
  const message = error instanceof Error ? error.message : '';
  return /timeout exceeded when trying to connect|due to connection timeout|does not support SSL/i.test(
    message,
  );
}

/**
 * 55000 (object not in prerequisite state) at connection time: the database exists but an operator set
 * `ALLOW_CONNECTIONS false` (maintenance, a restore). It may well accept connections later, unlike the other
 * uses of 55000, which are mistakes in a statement.
 */
function isRefusedByDatabase(error: unknown, state: string): boolean {
  return (
    state === '55000' &&
    error instanceof Error &&
    /is not currently accepting connections/.test(error.message)
  );
}

/** The SQLSTATE of a server error (`pg`'s DatabaseError), or undefined for anything else. */
export function sqlState(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const { code, severity } = error as { code?: unknown; severity?: unknown };
  return typeof code === 'string' && typeof severity === 'string' && /^[0-9A-Z]{5}$/.test(code)
    ? code
    : undefined;
}

/**
 * Wraps whatever `pg` threw into the matching `BatonError`, keeping it as `cause`. The message names
 * `operation`, or says "cannot connect to the database" when no connection could be made
 * ({@link isConnectFailure}).
 *
 *
 * - no SQLSTATE (ECONNREFUSED, a reset socket, "Connection terminated", a connect timeout), class 08
 *   (connection exception), the transient states above (57P01 admin shutdown, 53300, 40001, ...) and a
 *   database that does not accept connections now (55000 at connect) → `UNAVAILABLE`;
 * - 57014 (statement timeout / cancel) → `TIMEOUT`;
 * - class 28 and 42501 → `PERMISSION_DENIED`;
 * - missing database → `RESOURCE_NOT_FOUND` (create it);
 * - missing schema, table, column or function → `RESOURCE_NOT_FOUND` (run the migrations);
 * - classes 22 and 23 (bad data, constraint violations) → `INVALID_ARGUMENT`;
 * - anything else → `PROTOCOL`.
 */
export function toBatonError(error: unknown, operation: string, schema?: string): BatonError {
  if (error instanceof BatonError) return error;
  const state = sqlState(error);
  const detail = redact(error instanceof Error ? error.message : String(error));
  const options = { cause: error, backend: BACKEND };
  const what = isConnectFailure(error) ? 'cannot connect to the database' : `${operation} failed`;
  const message = `postgres: ${what}: ${detail}${state ? ` (SQLSTATE ${state})` : ''}`;
  if (state === undefined) {
    const code = (error as { code?: unknown } | null)?.code;
    return new UnavailableError(typeof code === 'string' ? `${message} [${code}]` : message, options);
  }
  if (state.startsWith('08') || TRANSIENT_STATES.has(state) || isRefusedByDatabase(error, state)) {
    return new UnavailableError(message, options);
  }
  if (state === '57014') return new TimeoutError(message, options);
  if (state.startsWith('28') || state === '42501') return new PermissionDeniedError(message, options);
  if (state === '3D000') {
    const name = /database "(.*)" does not exist/.exec(detail)?.[1];
    const quoted = name === undefined || /^[a-z_][a-z0-9_]*$/.test(name) ? name : `"${name}"`;
    const create =
      quoted === undefined ? 'create it' : `create it (createdb ${quoted}, or CREATE DATABASE ${quoted})`;
    return new ResourceNotFoundError(
      `${message}. Fix: ${create} as a role allowed to, or point the ` +
        'connection settings (DATABASE_URL, or PGDATABASE) at an existing database.',
      options,
    );
  }
  if (MISSING_STATES.has(state)) {
    const fix = schema
      ? ` Fix: run the migrations (PostgresTaskSource.migrate(), or createPostgresTaskSource with migrate on) for schema '${schema}'.`
      : '';
    return new ResourceNotFoundError(`${message}.${fix}`, options);
  }
  if (state.startsWith('22') || state.startsWith('23')) return new InvalidArgumentError(message, options);
  return new ProtocolError(message, options);
}
