// The part of `pg` this package uses. `@types/pg` is not a dependency of this package; these declarations
// stay internal (no public type of the package mentions them).
declare module 'pg' {
  import type { EventEmitter } from 'node:events';

  export interface QueryResult<R> {
    rows: R[];
    rowCount: number | null;
    command: string;
  }

  export interface ConnectionOptions {
    connectionString?: string;
    host?: string;
    port?: number;
    user?: string;
    password?: string;
    database?: string;
    application_name?: string;
    statement_timeout?: number;
    connectionTimeoutMillis?: number;
    keepAlive?: boolean;
  }

  export interface PoolConfig extends ConnectionOptions {
    max?: number;
    idleTimeoutMillis?: number;
    allowExitOnIdle?: boolean;
  }

  export interface Queryable {
    query<R = Record<string, unknown>>(text: string, values?: readonly unknown[]): Promise<QueryResult<R>>;
  }

  export interface PoolClient extends Queryable, EventEmitter {
    release(destroy?: boolean | Error): void;
  }

  export class Pool extends EventEmitter implements Queryable {
    constructor(config?: PoolConfig);
    query<R = Record<string, unknown>>(text: string, values?: readonly unknown[]): Promise<QueryResult<R>>;
    connect(): Promise<PoolClient>;
    end(): Promise<void>;
    readonly totalCount: number;
    readonly idleCount: number;
    readonly waitingCount: number;
  }

  export class Client extends EventEmitter implements Queryable {
    constructor(config?: string | ConnectionOptions);
    connect(): Promise<void>;
    query<R = Record<string, unknown>>(text: string, values?: readonly unknown[]): Promise<QueryResult<R>>;
    end(): Promise<void>;
  }

  /** An error the server reported (ErrorResponse). */
  export class DatabaseError extends Error {
    code: string | undefined;
    severity: string | undefined;
    detail: string | undefined;
    schema: string | undefined;
    table: string | undefined;
    column: string | undefined;
    constraint: string | undefined;
  }

  const pg: { Pool: typeof Pool; Client: typeof Client; DatabaseError: typeof DatabaseError };
  export default pg;
}
