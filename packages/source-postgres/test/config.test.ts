import { ConfigError } from '@baton/core';
import { describe, expect, it } from 'vitest';
import { isConnectFailure, parsePostgresConfig, sqlState, toBatonError } from '../src/index.js';

function configError(input: unknown, fromEnv: boolean): ConfigError {
  try {
    parsePostgresConfig(input, { fromEnv });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('configuration', () => {
  it('reads DATABASE_URL, PG* and BATON_PG_* with defaults for the rest', () => {
    expect(parsePostgresConfig({ DATABASE_URL: 'postgres://u:p@db:5432/app' }, { fromEnv: true })).toEqual({
      connectionString: 'postgres://u:p@db:5432/app',
      schema: 'baton',
      poolSize: 10,
      applicationName: 'baton',
      connectTimeoutMs: 10_000,
      window: {},
      reclaimAfterMs: 30_000,
      backoff: { baseMs: 1_000, maxMs: 3_600_000 },
      defaultMaxAttempts: 5,
      migrate: true,
    });
    const config = parsePostgresConfig(
      {
        PGHOST: 'db.internal',
        PGPORT: '6432',
        PGUSER: 'worker',
        PGPASSWORD: 'secret',
        PGDATABASE: 'jobs',
        PGAPPNAME: 'billing-worker',
        BATON_PG_SCHEMA: 'billing',
        BATON_PG_POOL_SIZE: '25',
        BATON_PG_WINDOW: '1h',
        BATON_PG_RECLAIM_AFTER: '2m',
        BATON_PG_BACKOFF_BASE: '500ms',
        BATON_PG_BACKOFF_MAX: '15m',
        BATON_PG_MAX_ATTEMPTS: '8',
        BATON_PG_MIGRATE: 'false',
        BATON_PG_STATEMENT_TIMEOUT: '30s',
        BATON_PG_CONNECT_TIMEOUT: '3s',
        UNRELATED: 'ignored',
      },
      { fromEnv: true },
    );
    expect(config).toMatchObject({
      host: 'db.internal',
      port: 6432,
      user: 'worker',
      password: 'secret',
      database: 'jobs',
      applicationName: 'billing-worker',
      schema: 'billing',
      poolSize: 25,
      window: { createdWithinMs: 3_600_000 },
      reclaimAfterMs: 120_000,
      backoff: { baseMs: 500, maxMs: 900_000 },
      defaultMaxAttempts: 8,
      migrate: false,
      statementTimeoutMs: 30_000,
      connectTimeoutMs: 3_000,
    });
  });

  it('names the environment variable and the fix when a value from the environment is bad', () => {
    const cases: Array<[Record<string, string>, string, RegExp]> = [
      [{}, 'DATABASE_URL', /DATABASE_URL.*postgres:\/\//s],
      [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL', /postgres:\/\//],
      [{ DATABASE_URL: 'postgres://x', BATON_PG_SCHEMA: 'My-Schema' }, 'BATON_PG_SCHEMA', /lowercase/],
      [{ DATABASE_URL: 'postgres://x', BATON_PG_SCHEMA: 'pg_temp' }, 'BATON_PG_SCHEMA', /reserved/],
      [{ DATABASE_URL: 'postgres://x', BATON_PG_WINDOW: 'an hour' }, 'BATON_PG_WINDOW', /duration/],
      [{ DATABASE_URL: 'postgres://x', BATON_PG_POOL_SIZE: '0' }, 'BATON_PG_POOL_SIZE', /1 to 1000/],
      [{ DATABASE_URL: 'postgres://x', BATON_PG_MAX_ATTEMPTS: 'many' }, 'BATON_PG_MAX_ATTEMPTS', /whole/],
      [
        { DATABASE_URL: 'postgres://x', BATON_PG_BACKOFF_BASE: '2h', BATON_PG_BACKOFF_MAX: '1h' },
        'BATON_PG_BACKOFF_BASE',
        /not exceed/,
      ],
      [{ DATABASE_URL: 'postgres://x', BATON_PG_MIGRATE: 'maybe' }, 'BATON_PG_MIGRATE', /true or false/],
      [{ PGHOST: 'db', PGPORT: '70000' }, 'PGPORT', /port/],
    ];
    for (const [env, field, message] of cases) {
      const error = configError(env, true);
      expect(error.field, JSON.stringify(env)).toBe(field);
      expect(error.code).toBe('CONFIG_INVALID');
      expect(error.message, JSON.stringify(env)).toMatch(message);
    }
  });

  it('names the field (and its variable) when a configuration object is bad', () => {
    const error = configError({ connectionString: 'postgres://x', window: { createdWithinMs: -5 } }, false);
    expect(error.field).toBe('window.createdWithinMs');
    expect(error.message).toMatch(/window\.createdWithinMs \(env BATON_PG_WINDOW\)/);
    expect(configError({ host: 'db', schema: 'x y' }, false).field).toBe('schema');
    expect(parsePostgresConfig({ host: 'db', reclaimAfterMs: '10s' }).reclaimAfterMs).toBe(10_000);
  });
});

describe('error mapping', () => {
  const serverError = (code: string) =>
    Object.assign(new Error(`server says ${code}`), { code, severity: 'ERROR' });

  it('maps SQLSTATEs and transport failures to BatonError codes, keeping the cause', () => {
    const cases: Array<[unknown, string]> = [
      [Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), 'UNAVAILABLE'],
      [Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }), 'UNAVAILABLE'],
      [new Error('Connection terminated unexpectedly'), 'UNAVAILABLE'],
      [new Error('timeout exceeded when trying to connect'), 'UNAVAILABLE'],
      [serverError('57P01'), 'UNAVAILABLE'],
      [serverError('08006'), 'UNAVAILABLE'],
      [serverError('53300'), 'UNAVAILABLE'],
      [serverError('40001'), 'UNAVAILABLE'],
      [serverError('40P01'), 'UNAVAILABLE'],
      [serverError('57014'), 'TIMEOUT'],
      [serverError('28P01'), 'PERMISSION_DENIED'],
      [serverError('42501'), 'PERMISSION_DENIED'],
      [serverError('42P01'), 'RESOURCE_NOT_FOUND'],
      [serverError('3F000'), 'RESOURCE_NOT_FOUND'],
      [serverError('3D000'), 'RESOURCE_NOT_FOUND'],
      [serverError('22P02'), 'INVALID_ARGUMENT'],
      [serverError('23514'), 'INVALID_ARGUMENT'],
      [serverError('42601'), 'PROTOCOL'],
      [serverError('XX000'), 'PROTOCOL'],
    ];
    for (const [cause, code] of cases) {
      const error = toBatonError(cause, 'claim', 'baton');
      expect(error.code, String(cause)).toBe(code);
      expect(error.cause).toBe(cause);
      expect(error.backend).toBe('postgres');
      // A connection that was never made says so instead of blaming the operation it was for.
      expect(error.message).toMatch(
        isConnectFailure(cause) ? /^postgres: cannot connect to the database: / : /^postgres: claim failed: /,
      );
    }
    expect(toBatonError(serverError('42P01'), 'get', 'billing').message).toMatch(/migrate.*'billing'/);
  });

  it('tells SQLSTATEs from Node error codes', () => {
    expect(sqlState(serverError('57P01'))).toBe('57P01');
    expect(sqlState(Object.assign(new Error('x'), { code: 'EPIPE' }))).toBeUndefined();
    expect(sqlState('57P01')).toBeUndefined();
  });
});
