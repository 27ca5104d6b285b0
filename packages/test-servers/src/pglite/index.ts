import { randomBytes } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import pg, { type Client as PgClient } from 'pg';
import { PgWireMultiplexer } from './multiplexer.js';

export { PgWireMultiplexer } from './multiplexer.js';

/** Options for {@link startPglite}. */
export interface StartPgliteOptions {
  /** Interface to listen on. Default `127.0.0.1`. */
  host?: string;
  /** Port to listen on; 0 (default) picks a free one. */
  port?: number;
}

/** A running in-process PGlite that `pg` reaches over TCP. */
export interface PgliteServer {
  /** `postgres://postgres@127.0.0.1:<port>/postgres`. */
  readonly connectionString: string;
  readonly host: string;
  readonly port: number;
  /** The embedded database itself. */
  readonly db: PGlite;
  /** Drops every client connection (as a server restart would); the server keeps listening. */
  dropConnections(): void;
  /** Refuses new connections and drops the open ones until {@link resume}. Data is kept. */
  suspend(): Promise<void>;
  /** Listens again on the same port. */
  resume(): Promise<void>;
  /** Stops everything. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts PGlite (PostgreSQL compiled to WebAssembly, in memory) behind `PGLiteSocketServer` and a
 * {@link PgWireMultiplexer}, on a random port, so `pg` connects to it over the wire.
 *
 * Any number of connections may be open at once. They share PGlite's single backend session: round trips
 * and whole transactions take turns (see {@link PgWireMultiplexer} for what that means for tests). Startup
 * takes a few seconds and a few hundred MB, so start one per test file and use a schema per test.
 */
export async function startPglite(options: StartPgliteOptions = {}): Promise<PgliteServer> {
  const db = await PGlite.create();
  const socketServer = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 1 });
  let multiplexer: PgWireMultiplexer | undefined;
  try {
    await socketServer.start();
    const [upstreamHost, upstreamPort] = splitHostPort(socketServer.getServerConn());
    multiplexer = new PgWireMultiplexer({ host: upstreamHost, port: upstreamPort });
    await multiplexer.start({ host: options.host ?? '127.0.0.1', port: options.port ?? 0 });
  } catch (error) {
    await multiplexer?.close();
    await socketServer.stop();
    await db.close();
    throw error;
  }
  const mux = multiplexer;
  let closing: Promise<void> | undefined;
  return {
    connectionString: `postgres://postgres@${mux.host}:${mux.port}/postgres`,
    host: mux.host,
    port: mux.port,
    db,
    dropConnections: () => mux.dropConnections(),
    suspend: () => mux.suspend(),
    resume: () => mux.resume(),
    close: () => {
      closing ??= (async () => {
        await mux.close();
        await socketServer.stop();
        await db.close();
      })();
      return closing;
    },
  };
}

/** Options for {@link testDatabase}. */
export interface TestDatabaseOptions {
  /** Where to look for `DATABASE_URL`. Default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Options for the embedded server when `DATABASE_URL` is not set. */
  pglite?: StartPgliteOptions;
}

/** A PostgreSQL database for one test file: PGlite by default, the server at `DATABASE_URL` when set. */
export interface TestDatabase {
  /** `pglite` (embedded) or `postgres` (the server at `DATABASE_URL`). */
  readonly kind: 'pglite' | 'postgres';
  /**
   * Connection string for `pg`. Against a real server it is `DATABASE_URL` with an `application_name`
   * unique to this handle, which is how {@link dropConnections} finds its connections.
   */
  readonly connectionString: string;
  /** A fresh schema made for this caller; dropped by {@link close}. */
  readonly schema: string;
  /** The embedded server (to simulate outages), or undefined against a real server. */
  readonly pglite: PgliteServer | undefined;
  /** Creates another fresh schema (a random name), dropped by {@link close}. */
  newSchema(prefix?: string): Promise<string>;
  /**
   * Ends every connection opened with {@link connectionString} from the server side, as a server restart
   * would (`pg_terminate_backend` on a real server: the clients get SQLSTATE 57P01).
   */
  dropConnections(): Promise<void>;
  /** Drops the schemas and releases the server. Idempotent. */
  close(): Promise<void>;
}

/**
 * The database every PostgreSQL test uses: when `DATABASE_URL` is set, that server with a fresh random
 * schema per caller (dropped on close); otherwise a fresh {@link startPglite}. The same tests thus run on
 * PGlite by default and on a real server in CI.
 */
export async function testDatabase(options: TestDatabaseOptions = {}): Promise<TestDatabase> {
  const url = (options.env ?? process.env).DATABASE_URL;
  return url ? serverDatabase(url) : pgliteDatabase(options.pglite);
}

/** A random schema name: lowercase letters, digits and underscores, unique enough for parallel runs. */
export function randomSchemaName(prefix = 't'): string {
  if (!/^[a-z_][a-z0-9_]{0,40}$/.test(prefix)) throw new TypeError(`bad schema prefix '${prefix}'`);
  return `${prefix}_${randomBytes(6).toString('hex')}`;
}

async function pgliteDatabase(options: StartPgliteOptions | undefined): Promise<TestDatabase> {
  const server = await startPglite(options);
  try {
    return await withSchemas('pglite', server.connectionString, server, async () => {
      server.dropConnections();
    });
  } catch (error) {
    await server.close();
    throw error;
  }
}

async function serverDatabase(databaseUrl: string): Promise<TestDatabase> {
  let url: URL;
  try {
    url = new URL(databaseUrl);
  } catch (cause) {
    throw new Error('DATABASE_URL must be a URL such as postgres://user:password@127.0.0.1:5432/db', {
      cause,
    });
  }
  const applicationName = randomSchemaName('baton_test');
  url.searchParams.set('application_name', applicationName);
  const terminate = async () => {
    await withClient(databaseUrl, (client) =>
      client.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE application_name = $1 AND pid <> pg_backend_pid()`,
        [applicationName],
      ),
    );
  };
  return withSchemas('postgres', url.toString(), undefined, terminate, databaseUrl);
}

async function withSchemas(
  kind: 'pglite' | 'postgres',
  connectionString: string,
  pglite: PgliteServer | undefined,
  dropConnections: () => Promise<void>,
  adminUrl = connectionString,
): Promise<TestDatabase> {
  const schemas: string[] = [];
  const newSchema = async (prefix = 't') => {
    const name = randomSchemaName(prefix);
    await withClient(adminUrl, (client) => client.query(`CREATE SCHEMA "${name}"`));
    schemas.push(name);
    return name;
  };
  const schema = await newSchema();
  let closing: Promise<void> | undefined;
  return {
    kind,
    connectionString,
    schema,
    pglite,
    newSchema,
    dropConnections,
    close: () => {
      closing ??= (async () => {
        try {
          await dropConnections();
          await withClient(adminUrl, async (client) => {
            for (const name of schemas) await client.query(`DROP SCHEMA IF EXISTS "${name}" CASCADE`);
          });
        } finally {
          await pglite?.close();
        }
      })();
      return closing;
    },
  };
}

async function withClient<T>(connectionString: string, body: (client: PgClient) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString, connectionTimeoutMillis: 10_000 });
  // A connection error without a query in flight is reported by the next query; do not crash on the event.
  client.on('error', () => {});
  await client.connect();
  try {
    return await body(client);
  } finally {
    await client.end().catch(() => {});
  }
}

function splitHostPort(address: string): [string, number] {
  const at = address.lastIndexOf(':');
  return [address.slice(0, at), Number(address.slice(at + 1))];
}
