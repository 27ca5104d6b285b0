import { checkDuration } from '@baton/core';
import pg, { type PoolConfig } from 'pg';
import { postgresDurationBounds } from './config.js';

/** What a query returns, as far as the source cares. */
export interface PgQueryResult {
  rows: unknown[];
  rowCount: number | null;
}

/** A statement with a name: the connection parses and plans it once, then only binds and executes it. */
export interface PgQueryConfig {
  name?: string;
  text: string;
  values?: unknown[];
}

/** A connection (or pool) that runs parameterised statements. A `pg.Pool` or `pg.Client` satisfies it. */
export interface PgQueryable {
  query(text: string, values?: unknown[]): Promise<PgQueryResult>;
  query(config: PgQueryConfig): Promise<PgQueryResult>;
}

/** A client checked out of a {@link PgPool}. */
export interface PgPoolClient extends PgQueryable {
  /** Returns the client to the pool; `true` or an error destroys it instead. */
  release(destroy?: boolean | Error): void;
  on(event: 'error', listener: (error: Error) => void): unknown;
  removeListener(event: 'error', listener: (error: Error) => void): unknown;
}

/** The part of a `pg.Pool` the source uses. A `pg.Pool` satisfies it. */
export interface PgPool extends PgQueryable {
  connect(): Promise<PgPoolClient>;
  end(): Promise<void>;
}

/** How the source connects when it creates its own pool. Unset fields fall back to pg's PG* defaults. */
export interface PostgresConnectionOptions {
  /** `postgres://user:password@host:5432/database?sslmode=require`. Wins over the separate fields. */
  connectionString?: string;
  host?: string;
  port?: number;
  user?: string;
  password?: string;
  database?: string;
  /** Maximum connections. Default 10. */
  poolSize?: number;
  /** Shown in `pg_stat_activity`. Default `baton`. */
  applicationName?: string;
  /** Give up connecting after this long. Default 10 000 ms, from 1 ms to 10 min. */
  connectTimeoutMs?: number;
  /** Server-side `statement_timeout` for every statement, from 1 s to 24 h (unset: the server's default). */
  statementTimeoutMs?: number;
}

/** A pool the source created itself: it also reports errors of idle connections. */
export interface OwnedPool extends PgPool {
  on(event: 'error', listener: (error: Error) => void): unknown;
}

/** Creates the `pg.Pool` the source owns. */
export function createPool(options: PostgresConnectionOptions): OwnedPool {
  const { connectTimeoutMs = 10_000, statementTimeoutMs } = options;
  checkDuration('connectTimeoutMs', connectTimeoutMs, postgresDurationBounds.connectTimeoutMs);
  if (statementTimeoutMs !== undefined) {
    checkDuration('statementTimeoutMs', statementTimeoutMs, postgresDurationBounds.statementTimeoutMs);
  }
  const config: PoolConfig = {
    max: options.poolSize ?? 10,
    application_name: options.applicationName ?? 'baton',
    connectionTimeoutMillis: connectTimeoutMs,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
  };
  if (options.connectionString !== undefined) config.connectionString = options.connectionString;
  if (options.host !== undefined) config.host = options.host;
  if (options.port !== undefined) config.port = options.port;
  if (options.user !== undefined) config.user = options.user;
  if (options.password !== undefined) config.password = options.password;
  if (options.database !== undefined) config.database = options.database;
  if (statementTimeoutMs !== undefined) config.statement_timeout = statementTimeoutMs;
  return new pg.Pool(config);
}
