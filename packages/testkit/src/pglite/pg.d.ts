// The part of `pg` the PGlite harness uses. `@types/pg` is not a dependency of this package.
declare module 'pg' {
  import type { EventEmitter } from 'node:events';

  export interface QueryResult<R> {
    rows: R[];
    rowCount: number | null;
  }

  export interface ClientConfig {
    connectionString?: string;
    application_name?: string;
    connectionTimeoutMillis?: number;
  }

  export class Client extends EventEmitter {
    constructor(config?: string | ClientConfig);
    connect(): Promise<void>;
    query<R = Record<string, unknown>>(text: string, values?: readonly unknown[]): Promise<QueryResult<R>>;
    end(): Promise<void>;
  }

  const pg: { Client: typeof Client };
  export default pg;
}
