// The PostgreSQL server the task benchmarks use.
//
// - DATABASE_URL set: used as is.
// - Otherwise the machine's PostgreSQL server (Debian/Ubuntu `pg_ctlcluster` layout): started when it is
//   down, the `postgres` role gets the password `baton` when a TCP login fails, and a database
//   `baton_bench` is created. Every step is idempotent and skipped when not needed, so it coexists with
//   .ci/run doing the same.
// - Neither: `UnavailableError` with a message that says what to do.
//
// Each benchmark then works in schemas of its own (`freshSchema`), dropped afterwards.

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import pg from 'pg';
import { UnavailableError } from './packages.mjs';

const DEFAULT_PASSWORD = 'baton';
const DATABASE = 'baton_bench';

function sh(cmd, args, options = {}) {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...options }).trim();
}

async function canConnect(url) {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
  try {
    await client.connect();
    await client.query('select 1');
    return { ok: true };
  } catch (error) {
    return { ok: false, error };
  } finally {
    await client.end().catch(() => {});
  }
}

function findLocalCluster() {
  if (!existsSync('/usr/bin/pg_lsclusters')) return undefined;
  let lines;
  try {
    lines = sh('pg_lsclusters', ['--no-header']).split('\n').filter(Boolean);
  } catch {
    return undefined;
  }
  const clusters = lines.map((line) => {
    const [version, name, port, status] = line.trim().split(/\s+/);
    return { version, name, port: Number(port), online: status === 'online' };
  });
  // Prefer a running cluster, then the newest version.
  clusters.sort((a, b) => Number(b.online) - Number(a.online) || Number(b.version) - Number(a.version));
  return clusters[0];
}

function psqlAsPostgres(sql, port, database = 'postgres') {
  return sh('su', ['postgres', '-c', `psql -p ${port} -d ${database} -v ON_ERROR_STOP=1 -Atc "${sql}"`]);
}

let ensured;

/**
 * Returns a connection URL for a database the benchmarks may use, starting and configuring the local server
 * if needed. Logs what it did through `log`. Memoised per process.
 */
export function ensurePostgres(log = () => {}) {
  ensured ??= setUp(log);
  return ensured;
}

async function setUp(log) {
  if (process.env.DATABASE_URL) {
    const url = process.env.DATABASE_URL;
    const probe = await canConnect(url);
    if (!probe.ok) {
      throw new UnavailableError(`DATABASE_URL is set but the server refused: ${probe.error?.message}`);
    }
    return { url, source: 'DATABASE_URL' };
  }
  const cluster = findLocalCluster();
  if (!cluster) {
    throw new UnavailableError(
      'PostgreSQL not found: DATABASE_URL is unset and no local server is installed (pg_lsclusters missing). ' +
        'Set DATABASE_URL=postgres://user:password@host:5432/db to run the task benchmarks.',
    );
  }
  const { version, name, port } = cluster;
  if (!cluster.online) {
    log(`starting PostgreSQL ${version}/${name} (pg_ctlcluster)`);
    try {
      sh('pg_ctlcluster', ['--skip-systemctl-redirect', version, name, 'start']);
    } catch (error) {
      // A colleague may have started it at the same moment.
      if (!findLocalCluster()?.online) {
        throw new UnavailableError(
          `PostgreSQL ${version}/${name} is installed but could not be started: ${error.stderr || error.message}`,
        );
      }
    }
  }
  const base = `postgres://postgres:${DEFAULT_PASSWORD}@127.0.0.1:${port}`;
  let probe = await canConnect(`${base}/postgres`);
  if (!probe.ok && /password|authentication/i.test(String(probe.error?.message))) {
    log(`setting the password of role postgres for TCP logins`);
    try {
      psqlAsPostgres(`ALTER USER postgres PASSWORD '${DEFAULT_PASSWORD}'`, port);
    } catch (error) {
      throw new UnavailableError(
        `could not set a password for role postgres: ${error.stderr || error.message}`,
      );
    }
    probe = await canConnect(`${base}/postgres`);
  }
  if (!probe.ok) {
    throw new UnavailableError(
      `PostgreSQL ${version}/${name} on port ${port} refused: ${probe.error?.message}`,
    );
  }
  const admin = new pg.Client({ connectionString: `${base}/postgres` });
  await admin.connect();
  try {
    const { rowCount } = await admin.query('select 1 from pg_database where datname = $1', [DATABASE]);
    if (!rowCount) {
      log(`creating database ${DATABASE}`);
      await admin.query(`create database ${DATABASE}`).catch((error) => {
        if (error.code !== '42P04') throw error; // created concurrently
      });
    }
  } finally {
    await admin.end();
  }
  return { url: `${base}/${DATABASE}`, source: `local PostgreSQL ${version}/${name}`, version };
}

/** Server version string, e.g. `15.10`. */
export async function serverVersion(url) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query('show server_version');
    return rows[0].server_version;
  } finally {
    await client.end();
  }
}

/** A unique schema name with the given prefix (lowercase, safe to interpolate). */
export function schemaName(prefix) {
  return `${prefix.replace(/[^a-z0-9_]/g, '_')}_${randomBytes(4).toString('hex')}`;
}

/** Drops schemas (cascade), ignoring missing ones. */
export async function dropSchemas(url, schemas) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (const schema of schemas) await client.query(`drop schema if exists "${schema}" cascade`);
  } finally {
    await client.end();
  }
}

/**
 * The same URL with `synchronous_commit=off` for its sessions: commits no longer wait for the WAL flush.
 * Used only where the benchmark measures something other than write latency (memory), to keep it short.
 */
export function withAsyncCommit(url) {
  const u = new URL(url);
  u.searchParams.set('options', '-c synchronous_commit=off');
  return u.toString();
}

/** The database name of a connection URL. */
export function databaseOf(url) {
  return decodeURIComponent(new URL(url).pathname.slice(1)) || 'postgres';
}
