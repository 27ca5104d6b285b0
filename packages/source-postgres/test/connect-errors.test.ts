import { isBatonError } from '@baton/core';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { createPostgresTaskSource, parsePostgresConfig, postgresConfigFields } from '../src/index.js';

// Issue 13: connection strings that can never work are config errors, connection failures say so (not
// "migrate failed"), a missing database says how to create it, and no message shows the password.
const PASSWORD = 'pg-SENTINEL-password-6a1f';

function configError(input: Record<string, string>, fromEnv: boolean): unknown {
  try {
    parsePostgresConfig(input, { fromEnv });
  } catch (error) {
    return error;
  }
  return undefined;
}

describe('connection strings that can never work are config errors naming DATABASE_URL', () => {
  const rows: Array<[string, string, RegExp]> = [
    ['port 99999', `postgres://app:${PASSWORD}@127.0.0.1:99999/app`, /port "99999" is out of range/],
    ['port 0', `postgres://app:${PASSWORD}@127.0.0.1:0/app`, /port "0" is out of range/],
    [
      'sslmode=banana',
      `postgres://app:${PASSWORD}@db/app?sslmode=banana`,
      /sslmode "banana" is not an SSL mode/,
    ],
    ['an unencoded / in the password', `postgres://app:${PASSWORD}/x@db/app`, /cannot be parsed as a URL/],
    ['a misspelt scheme', `postgress://app:${PASSWORD}@db/app`, /expected a postgres:\/\//],
    ['the password as a query parameter', `mysql://app@db/app?password=${PASSWORD}`, /expected a postgres/],
  ];
  it.each(rows)('%s', (_name, url, message) => {
    for (const [input, fromEnv, field] of [
      [{ DATABASE_URL: url }, true, 'DATABASE_URL'],
      [{ connectionString: url }, false, 'connectionString'],
    ] as const) {
      const error = configError(input, fromEnv);
      expect(isBatonError(error, 'CONFIG_INVALID'), String(error)).toBe(true);
      expect((error as { field: string }).field).toBe(field);
      expect((error as Error).message).toMatch(message);
      expect((error as Error).message).not.toContain(PASSWORD);
    }
  });

  it.each([
    'postgres://app:pw@db:5432/app?sslmode=require',
    'postgres://app:pw@db/app?sslmode=verify-full',
    'postgres://app:pw@db/app?sslmode=no-verify',
    'postgresql://[::1]:5432/app',
    'postgres://app:p%40ss@db:65535/app',
    'socket:/var/run/postgresql?db=app',
  ])('accepts %s', (url) => {
    expect(configError({ DATABASE_URL: url }, true)).toBeUndefined();
  });

  it('declares its secrets: credentials in DATABASE_URL, and PGPASSWORD', () => {
    const secret = Object.values(postgresConfigFields).filter((docs) => docs.secret);
    expect(secret.map((docs) => [docs.env, docs.secret])).toEqual([
      ['DATABASE_URL', 'url'],
      ['PGPASSWORD', true],
    ]);
  });
});

describe('connection failures', () => {
  it('an unreachable server says "cannot connect", not "migrate failed"', async () => {
    const error = await createPostgresTaskSource({
      DATABASE_URL: `postgres://app:${PASSWORD}@127.0.0.1:1/app`,
      BATON_PG_CONNECT_TIMEOUT: '5s',
    }).catch((e: unknown) => e);
    expect(isBatonError(error, 'UNAVAILABLE'), String(error)).toBe(true);
    expect((error as Error).message).toMatch(/^postgres: cannot connect to the database: .*ECONNREFUSED/);
    expect((error as Error).message).not.toMatch(/migrate/);
    expect((error as Error).message).not.toContain(PASSWORD);
  });

  // A server that checks passwords and knows which databases exist: the real one (.ci/run sets DATABASE_URL).
  const real = process.env.DATABASE_URL;
  const variant = (change: (url: URL) => void) => {
    const url = new URL(real ?? 'postgres://localhost/x');
    change(url);
    return url.toString();
  };

  it.skipIf(!real)(
    'a wrong password: PERMISSION_DENIED, "cannot connect", the password not shown',
    async () => {
      const error = await createPostgresTaskSource({
        DATABASE_URL: variant((url) => {
          url.password = PASSWORD;
        }),
      }).catch((e: unknown) => e);
      expect(isBatonError(error, 'PERMISSION_DENIED'), String(error)).toBe(true);
      expect((error as Error).message).toMatch(
        /cannot connect to the database: password authentication failed/,
      );
      expect((error as Error).message).not.toContain(PASSWORD);
    },
  );

  it.skipIf(!real)('a missing database says it does not exist and how to create it', async () => {
    const error = await createPostgresTaskSource({
      DATABASE_URL: variant((url) => {
        url.pathname = '/baton_no_such_db_7c1e';
      }),
    }).catch((e: unknown) => e);
    expect(isBatonError(error, 'RESOURCE_NOT_FOUND'), String(error)).toBe(true);
    const message = (error as Error).message;
    expect(message).toMatch(/database "baton_no_such_db_7c1e" does not exist/);
    expect(message).toMatch(/Fix: create it \(createdb baton_no_such_db_7c1e/);
    expect(message).not.toMatch(/run the migrations/);
  });

  it.skipIf(!real)(
    'a database refusing connections (ALLOW_CONNECTIONS false) is UNAVAILABLE: "cannot connect", not PROTOCOL',
    async () => {
      const name = `baton_closed_${process.pid}_${Date.now()}`;
      const admin = new pg.Client({ connectionString: real });
      await admin.connect();
      try {
        await admin.query(`CREATE DATABASE ${name}`);
        await admin.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
        const error = await createPostgresTaskSource({
          DATABASE_URL: variant((url) => {
            url.pathname = `/${name}`;
          }),
        }).catch((e: unknown) => e);
        expect(isBatonError(error, 'UNAVAILABLE'), String(error)).toBe(true);
        expect((error as Error).message).toMatch(
          new RegExp(
            `^postgres: cannot connect to the database: database "${name}" is not currently accepting connections \\(SQLSTATE 55000\\)`,
          ),
        );
      } finally {
        await admin.query(`DROP DATABASE IF EXISTS ${name}`);
        await admin.end();
      }
    },
  );
});
