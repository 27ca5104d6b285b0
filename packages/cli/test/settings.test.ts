import { describe, expect, it } from 'vitest';
import { resolveWorkerSettings } from '../src/commands/worker.js';
import {
  type ConfigFile,
  configFileSchema,
  databaseSchema,
  databaseUrl,
  type GlobalOptions,
  type LoadedConfig,
  logLevel,
} from '../src/config.js';
import { retentionPolicy } from '../src/worker-retention.js';

/** A validated config file, as `loadConfigFile` returns it. */
function config(raw: unknown): LoadedConfig {
  return { path: '/tmp/baton.json', file: configFileSchema.parse(raw) };
}

function worker(
  flags: Parameters<typeof resolveWorkerSettings>[0],
  env: Record<string, string>,
  file: ConfigFile,
) {
  return resolveWorkerSettings(flags, env, file);
}

describe('precedence: flag > environment > config file > default', () => {
  it('the config file schema carries no defaults (a default there would hide the environment)', () => {
    expect(configFileSchema.parse({ worker: {}, log: {}, metrics: {}, database: {} })).toEqual({
      worker: {},
      log: {},
      metrics: {},
      database: {},
    });
  });

  it('concurrency: flag, then file, then the default 4', () => {
    const file = config({ worker: { concurrency: 6 } }).file;
    expect(worker({ concurrency: 8 }, {}, file).worker.values.concurrency).toBe(8);
    expect(worker({}, {}, file).worker.values.concurrency).toBe(6);
    expect(worker({}, {}, {}).worker.values.concurrency).toBe(4);
    expect(worker({}, {}, file).worker.source('concurrency')).toEqual({
      from: 'file',
      field: 'worker.concurrency',
    });
  });

  it('durations from the file are milliseconds; the defaults are the schema defaults', () => {
    const file = config({ worker: { handlerTimeout: '2m', stopGrace: '20s' } }).file;
    const fromFile = worker({}, {}, file).worker.values;
    expect([fromFile.handlerTimeout, fromFile.stopGrace]).toEqual([120_000, 20_000]);
    const fromFlag = worker({ stopGrace: 5_000 }, {}, file).worker.values;
    expect(fromFlag.stopGrace).toBe(5_000);
    const defaults = worker({}, {}, {}).worker.values;
    expect([defaults.handlerTimeout, defaults.stopGrace, defaults.statsEvery]).toEqual([
      300_000,
      30_000,
      undefined,
    ]);
  });

  it('lease mode: flag over BATON_LEASE_BY over the file over task', () => {
    const file = config({ worker: { leaseBy: 'bucket' } }).file;
    const env = { BATON_LEASE_BY: 'task' };
    const flag = worker({ leaseBy: 'bucket' }, env, {}).worker;
    expect([flag.values.leaseBy, flag.source('leaseBy').field]).toEqual(['bucket', '--lease-by']);
    const fromEnv = worker({}, env, file).worker;
    expect([fromEnv.values.leaseBy, fromEnv.source('leaseBy').field]).toEqual(['task', 'BATON_LEASE_BY']);
    expect(worker({}, { BATON_LEASE_BY: '' }, file).worker.values.leaseBy).toBe('bucket');
    expect(worker({}, {}, {}).worker.source('leaseBy')).toEqual({ from: 'default', field: 'default' });
    expect(worker({}, {}, {}).worker.values.leaseBy).toBe('task');
  });

  it('bucket count: BATON_BUCKETS over the file, a bad value names the variable', () => {
    const file = config({ worker: { buckets: 128 } }).file;
    expect(worker({}, { BATON_BUCKETS: '32' }, file).worker.values.buckets).toBe(32);
    expect(worker({ buckets: 16 }, { BATON_BUCKETS: '32' }, file).worker.values.buckets).toBe(16);
    expect(worker({}, {}, file).worker.values.buckets).toBe(128);
    expect(worker({}, {}, {}).worker.values.buckets).toBe(64);
    expect(() => worker({}, { BATON_BUCKETS: '48' }, file)).toThrow(/^BATON_BUCKETS: .*power of two/);
  });

  it('the schedule is one group: a flag replaces the file choice instead of mixing with it', () => {
    const file = config({ worker: { cron: '0 * * * *' } }).file;
    const flagged = worker({ every: 5_000 }, {}, file).worker.values;
    expect([flagged.every, flagged.cron, flagged.once]).toEqual([5_000, undefined, undefined]);
    const fromFile = worker({}, {}, file).worker.values;
    expect([fromFile.every, fromFile.cron]).toEqual([undefined, '0 * * * *']);
    const none = worker({}, {}, {}).worker.values;
    expect([none.every, none.cron, none.once]).toEqual([1_000, undefined, undefined]);
  });

  it('heartbeat interval: flag > BATON_HEARTBEAT_EVERY > file > the library default (10 s); off turns it off', () => {
    expect(worker({}, {}, {}).worker.values.heartbeatEvery).toBe(10_000);
    const file = config({ worker: { heartbeatEvery: '30s' } }).file;
    expect(worker({}, {}, file).worker.values.heartbeatEvery).toBe(30_000);
    expect(worker({}, { BATON_HEARTBEAT_EVERY: '5s' }, file).worker.values.heartbeatEvery).toBe(5_000);
    expect(worker({}, { BATON_HEARTBEAT_EVERY: 'off' }, file).worker.values.heartbeatEvery).toBe(false);
    expect(
      worker({ heartbeatEvery: 2_000 }, { BATON_HEARTBEAT_EVERY: 'off' }, file).worker.source(
        'heartbeatEvery',
      ),
    ).toEqual({
      from: 'flag',
      field: '--heartbeat-every',
    });
    expect(
      worker({}, {}, config({ worker: { heartbeatEvery: false } }).file).worker.values.heartbeatEvery,
    ).toBe(false);
    expect(
      worker({}, {}, config({ worker: { heartbeatEvery: 'off' } }).file).worker.values.heartbeatEvery,
    ).toBe(false);
    expect(() => worker({}, { BATON_HEARTBEAT_EVERY: '2h' }, {})).toThrow(
      /^BATON_HEARTBEAT_EVERY: .*100ms to 1h.*or off/,
    );
    expect(() => config({ worker: { heartbeatEvery: '10ms' } })).toThrow();
  });

  it('kinds and limits: flags over the file', () => {
    const file = config({ worker: { kinds: ['a'], limits: { a: 2 } } }).file;
    const flagged = worker({ kinds: 'b, c', limit: { b: 3 } }, {}, file).worker.values;
    expect([flagged.kinds, flagged.limits]).toEqual([['b', 'c'], { b: 3 }]);
    const fromFile = worker({}, {}, file).worker.values;
    expect([fromFile.kinds, fromFile.limits]).toEqual([['a'], { a: 2 }]);
  });

  it('metrics endpoint: flag over the file over 0.0.0.0', () => {
    const file = config({ metrics: { port: 9464, host: '127.0.0.1' } }).file;
    expect(worker({ metricsHost: '::1' }, {}, file).metrics.values).toEqual({ port: 9464, host: '::1' });
    expect(worker({}, {}, file).metrics.values).toEqual({ port: 9464, host: '127.0.0.1' });
    expect(worker({}, {}, {}).metrics.values).toEqual({ port: undefined, host: '0.0.0.0' });
  });

  it('retention: off by default; flag over BATON_RETAIN_* over the file; schedule and batch defaults', () => {
    expect(retentionPolicy(worker({}, {}, {}).worker)).toBeUndefined();
    const file = config({ worker: { retainDone: '72h', retainDead: '720h', retentionEvery: '10m' } }).file;
    expect(retentionPolicy(worker({}, {}, file).worker)).toEqual({
      doneAfterMs: 72 * 3_600_000,
      deadAfterMs: 720 * 3_600_000,
      everyMs: 600_000,
      batchSize: 1_000,
    });
    const env = { BATON_RETAIN_DONE: '24h', BATON_RETENTION_BATCH: '50' };
    expect(retentionPolicy(worker({}, env, file).worker)).toMatchObject({
      doneAfterMs: 24 * 3_600_000,
      batchSize: 50,
    });
    expect(retentionPolicy(worker({ retainDone: 1_000 }, env, file).worker)).toMatchObject({
      doneAfterMs: 1_000,
      deadAfterMs: 720 * 3_600_000,
    });
    expect(retentionPolicy(worker({ retainDead: 5_000 }, {}, {}).worker)).toEqual({
      deadAfterMs: 5_000,
      everyMs: 3_600_000,
      batchSize: 1_000,
    });
    expect(() => worker({}, { BATON_RETAIN_DEAD: 'soon' }, {})).toThrow(/^BATON_RETAIN_DEAD: /);
    expect(() => retentionPolicy(worker({}, { BATON_RETENTION_EVERY: '5m' }, {}).worker)).toThrow(
      /BATON_RETENTION_EVERY applies to retention only/,
    );
  });

  it('log level (every command): flag, BATON_LOG_LEVEL, file, info', () => {
    const file = config({ log: { level: 'warn' } });
    const env = { BATON_LOG_LEVEL: 'debug' };
    expect(logLevel({ logLevel: 'error' }, env, file)).toBe('error');
    expect(logLevel({}, env, file)).toBe('debug');
    expect(logLevel({}, {}, file)).toBe('warn');
    expect(logLevel({}, {}, config({}))).toBe('info');
    expect(() => logLevel({}, { BATON_LOG_LEVEL: 'loud' }, file)).toThrow(
      /^BATON_LOG_LEVEL: 'loud' is not a log level/,
    );
  });

  it('database url and schema (every command): flag, environment, file; errors name the source', () => {
    const file = config({ database: { url: 'postgres://file/db', schema: 'from_file' } });
    const env = { DATABASE_URL: 'postgres://env/db', BATON_PG_SCHEMA: 'from_env' };
    const flags: GlobalOptions = { databaseUrl: 'postgres://flag/db', schema: 'from_flag' };
    expect([databaseUrl(flags, env, file), databaseSchema(flags, env, file)]).toEqual([
      'postgres://flag/db',
      'from_flag',
    ]);
    expect([databaseUrl({}, env, file), databaseSchema({}, env, file)]).toEqual([
      'postgres://env/db',
      'from_env',
    ]);
    expect([databaseUrl({}, {}, file), databaseSchema({}, {}, file)]).toEqual([
      'postgres://file/db',
      'from_file',
    ]);
    expect(databaseUrl({}, { DATABASE_URL: '' }, config({}))).toBeUndefined();
    expect(() => databaseSchema({}, { BATON_PG_SCHEMA: 'pg_x' }, file)).toThrow(/^BATON_PG_SCHEMA: 'pg_x'/);
    expect(() => databaseSchema({ schema: 'Bad' }, {}, file)).toThrow(/^--schema: 'Bad'/);
  });
});
